import { RpcReply } from '@herald/bus';

const decoder = new TextDecoder();

/**
 * The gateway's Fastify reply serializer. A service's reply (`RpcReply`) goes out as the HTTP body
 * as it came: it is already SPEC 2's success body, so parsing it and printing it again (a 50-entry
 * audit page is ~25 KB) would only cost time. Everything else (error bodies, the OpenAPI document)
 * is printed with `JSON.stringify`, as by Fastify's default. Fastify gives an object body
 * `application/json; charset=utf-8` before it calls this.
 *
 * A serializer rather than a global Nest interceptor: an interceptor puts every request through an
 * rxjs pipeline, ~5% of the gateway's CPU in the profile (docs/benchmarks.md, Gateway).
 */
export function serializeReply(payload: unknown): string {
  return payload instanceof RpcReply ? decoder.decode(payload.body) : JSON.stringify(payload);
}
