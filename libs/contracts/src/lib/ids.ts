import { randomFillSync } from 'node:crypto';
import { monotonicFactory } from 'ulid';

/**
 * The same CSPRNG ulid uses by default, drawn 4 KiB at a time: ulid's default asks the operating
 * system for one byte per character (16 calls per id), which was the audit-writer's largest cost
 * under load (bench/audit-ingest).
 */
function pooledRandom(): () => number {
  const pool = Buffer.alloc(4096);
  let next = pool.length;
  return () => {
    if (next >= pool.length) {
      randomFillSync(pool);
      next = 0;
    }
    return pool[next++] / 256;
  };
}

/** Monotonic within a millisecond, so ids made in one batch sort in the order they were made. */
const nextUlid = monotonicFactory(pooledRandom());

/** A prefixed ULID (`aud_…`, `evt_…`): sortable by creation time. */
export function newId(prefix: string): string {
  return `${prefix}_${nextUlid()}`;
}
