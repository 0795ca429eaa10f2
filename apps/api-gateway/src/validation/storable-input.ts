import { ErrorCode, FieldError, HeraldError } from '@herald/contracts';
import type { FastifyReply, FastifyRequest } from 'fastify';

/**
 * Input every later step can hold, checked once at the edge: the DTO classes validate fields one
 * by one, but these rules hold for every string and every level of a request, so they are checked
 * here, where a request comes in, instead of in each service that stores it. Each was a 500 the
 * fuzz suite (test/fuzz) found.
 */

/**
 * The deepest nesting a body may have. Validation (class-transformer) and every later step walk
 * bodies recursively, and a body nested a few thousand levels deep overflows their stack. No field
 * of Herald's needs more than a few levels.
 */
export const MAX_BODY_DEPTH = 32;

/** Matches U+0000 (Postgres text and jsonb refuse it) or a lone surrogate (no UTF-8 form; jsonb refuses its escape). */
const UNSTORABLE = /[\u0000\p{Cs}]/u;

/** Why Herald cannot store this string, if it cannot. */
export function unstorable(s: string): string | undefined {
  return UNSTORABLE.test(s) ? 'must not contain U+0000 or unpaired surrogates' : undefined;
}

/** A field path fit for an error body: cut, and without the characters it may be reporting. */
const fieldName = (path: string) => path.replace(/[\u0000\p{Cs}]/gu, '\uFFFD').slice(0, 200);

/** The first thing in a parsed body Herald cannot take (too deep, or an unstorable key or string), walked without recursion. */
export function bodyProblem(value: unknown): FieldError | undefined {
  const pending: [unknown, string, number][] = [[value, '', 0]];
  while (pending.length) {
    const [v, path, depth] = pending.pop()!;
    if (typeof v === 'string') {
      const problem = unstorable(v);
      if (problem) return { field: fieldName(path), message: problem };
      continue;
    }
    if (v === null || typeof v !== 'object') continue;
    if (depth >= MAX_BODY_DEPTH) return { field: fieldName(path), message: `nested deeper than ${MAX_BODY_DEPTH} levels` };
    for (const [key, child] of Object.entries(v)) {
      const field = path ? `${path}.${key}` : key;
      const problem = unstorable(key);
      if (problem) return { field: fieldName(field), message: `the key ${problem}` };
      pending.push([child, field, depth + 1]);
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
      const problem = typeof s === 'string' ? unstorable(s) : undefined;
      if (problem) return done(HeraldError.validation([{ field: fieldName(key), message: problem }]));
    }
  }
  done();
}
