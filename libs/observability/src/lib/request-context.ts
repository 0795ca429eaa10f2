import { AsyncLocalStorage } from 'node:async_hooks';

/** What a service knows about the HTTP request behind the work it is doing (from the RPC context). */
export interface RequestContext {
  requestId: string;
  organizationId?: string;
  actorId?: string;
}

const storage = new AsyncLocalStorage<RequestContext>();

/** Runs `fn` so that every log line written inside it, however deep, carries the request id. */
export function runWithRequestContext<T>(context: RequestContext, fn: () => T): T {
  return storage.run(context, fn);
}

export function currentRequestContext(): RequestContext | undefined {
  return storage.getStore();
}

/** pino `mixin`: the fields every log line gets from the current request context. */
export function requestContextFields(): Record<string, string> {
  const c = storage.getStore();
  return c ? { requestId: c.requestId } : {};
}
