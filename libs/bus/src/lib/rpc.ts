import { Msg, MsgHdrs, NatsConnection, Subscription, headers as natsHeaders, NoRespondersError, TimeoutError, RequestError } from '@nats-io/nats-core';
import {
  ErrorBody,
  ErrorCode,
  HeraldError,
  REQUEST_ID_HEADER,
  RPC_ERROR_REPLY_PREFIX,
  RpcContext,
  RpcDef,
  RpcReplyMessage,
  RpcRequestMessage,
  rpcSubject,
  validateAs,
} from '@herald/contracts';
import { runWithRequestContext } from '@herald/observability';

/**
 * A value already serialized as JSON (`Res` names what it holds). A handler returns one when it can
 * produce the text more cheaply than the object, e.g. rows whose `jsonb` Postgres already printed:
 * the reply is then assembled around the text instead of parsing and printing it again.
 */
export class JsonText<Res = unknown> {
  declare readonly holds?: Res;
  constructor(readonly text: string) {}
}

export interface RpcResult<Res> {
  data: Res | JsonText<Res>;
  nextCursor?: string | null;
}

/** The bytes of a successful reply: SPEC 2's success body, `{"data":…}`, ready to send as is. */
export class RpcReply<Res> {
  declare readonly holds?: Res;
  constructor(readonly body: Uint8Array) {}
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
    let reply: string;
    try {
      const request = JSON.parse(decoder.decode(msg.data)) as RpcRequestMessage<unknown>;
      context = request.context;
      if (!context || typeof context.organizationId !== 'string') throw new HeraldError(ErrorCode.BadRequest, 'RPC request without context.');
      const payload = validateAs(def.request, request.payload ?? {}, { forbidUnknown: true });
      const ctx = context;
      const result = await runWithRequestContext(ctx, () => handler(payload, ctx));
      reply = serializeReply(result);
    } catch (err) {
      if (err instanceof HeraldError) {
        reply = errorReply(err.toBody());
      } else {
        this.onError(err, def.pattern, context);
        reply = errorReply({ code: ErrorCode.InternalError, message: 'An internal error occurred.' });
      }
    }
    try {
      msg.respond(encoder.encode(reply));
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

/** `{"data":…}` first, as RpcReplyMessage promises; JSON text is placed as it is. */
function serializeReply<Res>(result: RpcResult<Res>): string {
  const data = result.data instanceof JsonText ? result.data.text : JSON.stringify(result.data);
  const cursor = result.nextCursor === undefined ? '' : `,"nextCursor":${JSON.stringify(result.nextCursor)}`;
  return `{"data":${data}${cursor}}`;
}

function errorReply(error: ErrorBody): string {
  const reply: RpcReplyMessage<never> = { error };
  return JSON.stringify(reply);
}

const ERROR_PREFIX = encoder.encode(RPC_ERROR_REPLY_PREFIX);

function isErrorReply(body: Uint8Array): boolean {
  if (body.length < ERROR_PREFIX.length) return false;
  for (let i = 0; i < ERROR_PREFIX.length; i++) if (body[i] !== ERROR_PREFIX[i]) return false;
  return true;
}

/**
 * Calls RPC patterns; a timeout or a missing service becomes SERVICE_UNAVAILABLE, an error reply a
 * HeraldError, and a success is handed back unparsed (the gateway sends it on as the HTTP body).
 */
export class RpcClient {
  constructor(
    private readonly nc: NatsConnection,
    private readonly prefix: string,
    private readonly timeoutMs: number,
  ) {}

  /** `timeoutMs` overrides the client's timeout for this call (a long operation such as the audit chain check). */
  async call<Req extends object, Res>(def: RpcDef<Req, Res>, payload: Req, context: RpcContext, timeoutMs = this.timeoutMs): Promise<RpcReply<Res>> {
    const h: MsgHdrs = natsHeaders();
    h.set(REQUEST_ID_HEADER, context.requestId);
    const body: RpcRequestMessage<Req> = { context, payload };
    let msg: Msg;
    try {
      msg = await this.nc.request(rpcSubject(this.prefix, def), encoder.encode(JSON.stringify(body)), { timeout: timeoutMs, headers: h });
    } catch (err) {
      if (isUnavailable(err)) {
        throw new HeraldError(ErrorCode.ServiceUnavailable, `The ${def.service} service did not answer in time.`);
      }
      throw err;
    }
    if (isErrorReply(msg.data)) {
      const e: ErrorBody = (JSON.parse(decoder.decode(msg.data)) as { error: ErrorBody }).error;
      throw new HeraldError(e.code, e.message, e.details);
    }
    return new RpcReply<Res>(msg.data);
  }
}

function isUnavailable(err: unknown): boolean {
  if (err instanceof TimeoutError || err instanceof NoRespondersError) return true;
  if (err instanceof RequestError) return err.isNoResponders() || err.cause instanceof TimeoutError;
  return false;
}
