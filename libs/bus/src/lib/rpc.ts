import { Msg, MsgHdrs, NatsConnection, Subscription, headers as natsHeaders, NoRespondersError, TimeoutError, RequestError } from '@nats-io/nats-core';
import {
  ErrorBody,
  ErrorCode,
  HeraldError,
  REQUEST_ID_HEADER,
  RpcContext,
  RpcDef,
  RpcReplyMessage,
  RpcRequestMessage,
  rpcSubject,
  validateAs,
} from '@herald/contracts';
import { runWithRequestContext } from '@herald/observability';

export interface RpcResult<Res> {
  data: Res;
  nextCursor?: string | null;
}

export type RpcHandler<Req, Res> = (payload: Req, context: RpcContext) => Promise<RpcResult<Res>>;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Serves RPC patterns of one service over core NATS request/reply, in a queue group so replicas
 * share the load. Payloads are validated with the contract's class before the handler runs.
 *
 * Written on the official client rather than Nest's NATS transport because the subjects carry a
 * configurable prefix (tests and several stacks share one NATS), the request id rides in a header,
 * and errors travel as SPEC's error body; it also reuses the one connection the JetStream side opens.
 */
export class RpcServer {
  private readonly subs: Subscription[] = [];
  private inFlight = 0;
  private idle?: () => void;

  constructor(
    private readonly nc: NatsConnection,
    private readonly prefix: string,
    private readonly onError: (err: unknown, pattern: string, context?: RpcContext) => void,
  ) {}

  handle<Req extends object, Res>(def: RpcDef<Req, Res>, handler: RpcHandler<Req, Res>): void {
    const subject = rpcSubject(this.prefix, def);
    const sub = this.nc.subscribe(subject, {
      queue: `herald.${def.service}`,
      callback: (err, msg) => {
        if (err) return this.onError(err, def.pattern);
        void this.serve(def, handler, msg);
      },
    });
    this.subs.push(sub);
  }

  private async serve<Req extends object, Res>(def: RpcDef<Req, Res>, handler: RpcHandler<Req, Res>, msg: Msg): Promise<void> {
    this.inFlight++;
    let context: RpcContext | undefined;
    let reply: RpcReplyMessage<Res>;
    try {
      const request = JSON.parse(decoder.decode(msg.data)) as RpcRequestMessage<unknown>;
      context = request.context;
      if (!context || typeof context.organizationId !== 'string') throw new HeraldError(ErrorCode.BadRequest, 'RPC request without context.');
      const payload = validateAs(def.request, request.payload ?? {}, { forbidUnknown: true });
      const ctx = context;
      const result = await runWithRequestContext(ctx, () => handler(payload, ctx));
      reply = result.nextCursor === undefined ? { data: result.data } : { data: result.data, nextCursor: result.nextCursor };
    } catch (err) {
      if (err instanceof HeraldError) {
        reply = { error: err.toBody() };
      } else {
        this.onError(err, def.pattern, context);
        reply = { error: { code: ErrorCode.InternalError, message: 'An internal error occurred.' } };
      }
    }
    try {
      msg.respond(encoder.encode(JSON.stringify(reply)));
    } catch (err) {
      this.onError(err, def.pattern, context);
    } finally {
      this.inFlight--;
      if (this.inFlight === 0) this.idle?.();
    }
  }

  /** Stops taking requests and waits for those in flight to be answered. */
  async stop(): Promise<void> {
    await Promise.all(this.subs.map((s) => s.drain().catch(() => undefined)));
    if (this.inFlight > 0) await new Promise<void>((resolve) => (this.idle = resolve));
  }
}

/** Calls RPC patterns; a timeout or a missing service becomes SERVICE_UNAVAILABLE. */
export class RpcClient {
  constructor(
    private readonly nc: NatsConnection,
    private readonly prefix: string,
    private readonly timeoutMs: number,
  ) {}

  async call<Req extends object, Res>(def: RpcDef<Req, Res>, payload: Req, context: RpcContext): Promise<RpcResult<Res>> {
    const h: MsgHdrs = natsHeaders();
    h.set(REQUEST_ID_HEADER, context.requestId);
    const body: RpcRequestMessage<Req> = { context, payload };
    let msg: Msg;
    try {
      msg = await this.nc.request(rpcSubject(this.prefix, def), encoder.encode(JSON.stringify(body)), { timeout: this.timeoutMs, headers: h });
    } catch (err) {
      if (isUnavailable(err)) {
        throw new HeraldError(ErrorCode.ServiceUnavailable, `The ${def.service} service did not answer in time.`);
      }
      throw err;
    }
    const reply = JSON.parse(decoder.decode(msg.data)) as RpcReplyMessage<Res>;
    if ('error' in reply) {
      const e: ErrorBody = reply.error;
      throw new HeraldError(e.code, e.message, e.details);
    }
    return reply;
  }
}

function isUnavailable(err: unknown): boolean {
  if (err instanceof TimeoutError || err instanceof NoRespondersError) return true;
  if (err instanceof RequestError) return err.isNoResponders() || err.cause instanceof TimeoutError;
  return false;
}
