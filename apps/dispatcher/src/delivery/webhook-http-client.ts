import { createHmac } from 'node:crypto';
import { Agent, buildConnector } from 'undici';
import { ResolvedTarget, Resolver, UrlPolicy, checkWebhookUrl, systemResolver } from '../webhooks/url-policy';

/** SPEC 2: an attempt keeps at most 4 KiB of the response body. */
export const RESPONSE_BODY_LIMIT = 4096;
/** Read (and drop) up to this much more so the connection can be reused; a larger body closes it. */
const DRAIN_LIMIT = 64 * 1024;

export interface OutgoingDelivery {
  url: string;
  secret: string;
  /** The exact bytes that are signed and sent. */
  body: Buffer;
  headers: Record<string, string>;
}

export interface AttemptResult {
  startedAt: Date;
  durationMs: number;
  statusCode: number | null;
  error: string | null;
  responseBody: string | null;
  retryAfter: string | null;
}

/** SPEC 3: lowercase hex HMAC-SHA256 of the exact body bytes, as the seed's verifyWebhookSignature expects. */
export function sign(body: Buffer, secret: string): string {
  return createHmac('sha256', secret).update(body).digest('hex');
}

export interface WebhookHttpClientOptions {
  policy: UrlPolicy;
  timeoutMs: number;
  /** Connections per origin. */
  connections: number;
  userAgent: string;
  resolve?: Resolver;
}

/**
 * POSTs deliveries through a pooled undici Agent. Before every attempt the URL is checked again with
 * the registration rules (SPEC 3), and the connect hook dials the address that check approved, not
 * whatever DNS says a moment later (no DNS rebinding). Redirects are not followed (undici's request
 * does not follow them unless asked).
 */
export class WebhookHttpClient {
  private readonly agent: Agent;
  /** Host name → the addresses the latest check approved for it; read by the connect hook. */
  private readonly approved = new Map<string, ResolvedTarget>();
  private readonly resolve: Resolver;

  constructor(private readonly o: WebhookHttpClientOptions) {
    this.resolve = o.resolve ?? systemResolver;
    const dial = buildConnector({ timeout: o.timeoutMs, keepAlive: true });
    this.agent = new Agent({
      connections: o.connections,
      headersTimeout: o.timeoutMs,
      bodyTimeout: o.timeoutMs,
      keepAliveTimeout: 4000,
      connect: (opts, callback) => {
        const target = this.approved.get(opts.hostname);
        if (!target) return callback(new Error(`no approved address for ${opts.hostname}`), null);
        // `host` keeps the name, so TLS still sends it as SNI and verifies the certificate against it.
        dial({ ...opts, hostname: target.address }, callback);
      },
    });
  }

  async send(d: OutgoingDelivery): Promise<AttemptResult> {
    const startedAt = new Date();
    const t0 = performance.now();
    const done = (r: Omit<AttemptResult, 'startedAt' | 'durationMs'>): AttemptResult => ({ startedAt, durationMs: Math.round(performance.now() - t0), ...r });
    const verdict = await checkWebhookUrl(d.url, this.o.policy, this.resolve);
    if ('problem' in verdict) return done({ statusCode: null, error: `refused before sending: ${verdict.problem}`, responseBody: null, retryAfter: null });
    const url = new URL(d.url);
    const hostname = url.hostname.replace(/^\[|\]$/g, '');
    this.approved.set(hostname, verdict.targets[0]);
    try {
      const res = await this.agent.request({
        origin: url.origin,
        path: `${url.pathname}${url.search}`,
        method: 'POST',
        headers: {
          ...d.headers,
          'content-type': 'application/json',
          'x-commerce-signature': sign(d.body, d.secret),
          'user-agent': this.o.userAgent,
        },
        body: d.body,
        signal: AbortSignal.timeout(this.o.timeoutMs),
      });
      const responseBody = await readLimited(res.body);
      const retryAfter = res.headers['retry-after'];
      return done({ statusCode: res.statusCode, error: null, responseBody, retryAfter: typeof retryAfter === 'string' ? retryAfter : null });
    } catch (err) {
      return done({ statusCode: null, error: describe(err, this.o.timeoutMs), responseBody: null, retryAfter: null });
    }
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}

async function readLimited(body: AsyncIterable<Buffer> & { destroy(): void }): Promise<string> {
  const kept: Buffer[] = [];
  let keptBytes = 0;
  let total = 0;
  for await (const chunk of body) {
    total += chunk.length;
    if (keptBytes < RESPONSE_BODY_LIMIT) {
      const part = chunk.subarray(0, RESPONSE_BODY_LIMIT - keptBytes);
      kept.push(part);
      keptBytes += part.length;
    }
    if (total > DRAIN_LIMIT) {
      body.destroy();
      break;
    }
  }
  // Cut on a byte boundary; a split UTF-8 sequence at the end becomes U+FFFD rather than failing.
  // NUL is the one character a Postgres text column refuses.
  return Buffer.concat(kept).toString('utf8').replace(/\u0000/g, '');
}

function describe(err: unknown, timeoutMs: number): string {
  const e = err as { name?: string; code?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError' || e.code === 'UND_ERR_HEADERS_TIMEOUT' || e.code === 'UND_ERR_BODY_TIMEOUT' || e.code === 'UND_ERR_CONNECT_TIMEOUT') {
    return `timed out after ${timeoutMs} ms`;
  }
  const code = e.code ?? e.cause?.code;
  const message = e.message ?? String(err);
  return code && !message.includes(code) ? `${code}: ${message}` : message;
}
