import { ErrorCode, FieldError, HeraldError, jsonDepth, unstorable } from '@herald/contracts';
import type { FastifyReply, FastifyRequest } from 'fastify';

/**
 * Input every later step can hold, checked once where a request comes in: the DTO classes validate
 * fields one by one, but these rules hold for every string and every level of a request. They are
 * the bus's rules for event messages (`parseEventMessage`, with the same helpers), so a webhook's
 * `webhooks.*` event, which carries its metadata, is never refused by the audit-writer. Each was a
 * 500 the fuzz suite (test/fuzz) found.
 */

/**
 * The deepest nesting a body may have (the body itself is level 1). Validation (class-transformer)
 * and later steps walk bodies recursively, and a few thousand levels overflowed the dispatcher's
 * stack. No field of Herald's needs more than a few levels, and a `webhooks.*` event adds two levels
 * (envelope, data) and stays well within the bus's 64 (`EVENT_LIMITS.maxDepth`).
 */
export const MAX_BODY_DEPTH = 32;

const UNSTORABLE_MESSAGE = 'must not contain U+0000 or unpaired surrogates';

/** A field path fit for an error body: cut, and without the characters it may be reporting. */
const fieldName = (path: string) => path.replace(/[\u0000\p{Cs}]/gu, '\uFFFD').slice(0, 200);

/** Refuses a body text nested deeper than MAX_BODY_DEPTH, read from the text before it is parsed. */
export function depthProblem(text: string): FieldError | undefined {
  return jsonDepth(Buffer.from(text), MAX_BODY_DEPTH) > MAX_BODY_DEPTH ? { field: 'body', message: `nests objects and arrays deeper than ${MAX_BODY_DEPTH} levels` } : undefined;
}

/** The first key or string of a parsed body Herald cannot store, with its dotted path (walked without recursion). */
export function unstorableAt(value: unknown): FieldError | undefined {
  const pending: [unknown, string][] = [[value, '']];
  while (pending.length) {
    const [v, path] = pending.pop()!;
    if (typeof v === 'string') {
      if (unstorable(v)) return { field: fieldName(path), message: UNSTORABLE_MESSAGE };
    } else if (v !== null && typeof v === 'object') {
      for (const [key, child] of Object.entries(v)) {
        const field = path ? `${path}.${key}` : key;
        if (unstorable(key)) return { field: fieldName(field), message: `the key ${UNSTORABLE_MESSAGE}` };
        pending.push([child, field]);
      }
    }
  }
  return undefined;
}

/**
 * `preValidation` hook for path and query: a path parameter Herald could not have stored names
 * nothing (404, as any unknown id); a query value it could not store is a 422 on that parameter.
 * Like a body that is not JSON, this is answered before the key is checked.
 */
export function refuseUnstorableInput(request: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void): void {
  for (const value of Object.values((request.params ?? {}) as Record<string, unknown>)) {
    if (typeof value === 'string' && unstorable(value)) return done(new HeraldError(ErrorCode.NotFound, 'No such route or id.'));
  }
  for (const [key, value] of Object.entries((request.query ?? {}) as Record<string, unknown>)) {
    for (const s of [key, ...[value].flat()]) {
      if (typeof s === 'string' && unstorable(s)) return done(HeraldError.validation([{ field: fieldName(key), message: UNSTORABLE_MESSAGE }]));
    }
  }
  done();
}
