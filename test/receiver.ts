import { IncomingHttpHeaders, IncomingMessage, Server, ServerResponse, createServer } from 'node:http';
import { AddressInfo } from 'node:net';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { verifyWebhookSignature } = require('./verify-webhook-signature') as { verifyWebhookSignature: (body: string, signature: string, secret: string) => boolean };

export interface Received {
  path: string;
  method: string;
  headers: IncomingHttpHeaders;
  /** The body exactly as it arrived, as the seed's handler reads `req.rawBody`. */
  rawBody: string;
  at: number;
}

export interface Reply {
  status: number;
  headers?: Record<string, string>;
  body?: string;
  delayMs?: number;
}

/** Decides the reply to a request; `n` counts the requests this path has had so far (1-based). */
export type Responder = (req: Received, n: number) => Reply;

/**
 * A real webhook receiver on a local port, as a customer would run one: it records every request
 * with its raw body, answers what each path is told to, and checks signatures with the seed's
 * verifyWebhookSignature, unchanged.
 */
export class Receiver {
  readonly received: Received[] = [];
  private readonly responders = new Map<string, Responder>();
  private readonly counts = new Map<string, number>();
  private server?: Server;

  static async start(): Promise<Receiver> {
    const r = new Receiver();
    r.server = createServer((req, res) => r.handle(req, res));
    r.server.keepAliveTimeout = 5000;
    await new Promise<void>((resolve) => r.server!.listen(0, '127.0.0.1', resolve));
    return r;
  }

  get port(): number {
    return (this.server!.address() as AddressInfo).port;
  }

  url(path: string): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  on(path: string, responder: Responder): void {
    this.responders.set(path, responder);
  }

  /** Answers the listed statuses in turn, then the last one forever. */
  script(path: string, statuses: number[]): void {
    this.on(path, (_req, n) => ({ status: statuses[Math.min(n, statuses.length) - 1] }));
  }

  at(path: string): Received[] {
    return this.received.filter((r) => r.path === path);
  }

  async close(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '/';
      const r: Received = { path, method: req.method ?? '', headers: req.headers, rawBody: Buffer.concat(chunks).toString('utf8'), at: Date.now() };
      this.received.push(r);
      const n = (this.counts.get(path) ?? 0) + 1;
      this.counts.set(path, n);
      const reply: Reply = (this.responders.get(path) ?? ((): Reply => ({ status: 200, body: 'OK' })))(r, n);
      const send = () => {
        res.writeHead(reply.status, reply.headers);
        res.end(reply.body ?? '');
      };
      if (reply.delayMs) setTimeout(send, reply.delayMs);
      else send();
    });
  }
}

/** What the seed's receiver does first: verify `x-commerce-signature` over the raw body. */
export function signatureValid(r: Received, secret: string): boolean {
  const signature = r.headers['x-commerce-signature'];
  if (typeof signature !== 'string') return false;
  try {
    return verifyWebhookSignature(r.rawBody, signature, secret);
  } catch {
    return false; // timingSafeEqual throws on a signature of the wrong length
  }
}
