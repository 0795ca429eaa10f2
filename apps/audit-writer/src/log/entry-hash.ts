import { createHash } from 'node:crypto';

/** The hash before an organization's first entry. */
export const GENESIS_HASH = '0'.repeat(64);

/** What an entry's hash covers: every column a reader sees, plus its position in the chain. */
export interface HashedContent {
  id: string;
  eventId: string;
  event: string;
  entityType: string;
  entityId: string | null;
  actorId: string | null;
  actorType: string | null;
  organizationId: string;
  requestId: string | null;
  payload: unknown;
  /** ISO 8601 with milliseconds, as stored (timestamptz read back through a JS Date). */
  createdAt: string;
  recordedAt: string;
  chainSeq: number;
}

/**
 * JSON with object keys sorted at every depth. jsonb does not keep key order, so the payload read
 * back for verification must serialise to the same text as the payload that was written.
 */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v === undefined ? null : v)).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value)
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** sha256(previous hash, content): each entry's hash covers its content and everything before it. */
export function entryHash(previous: string, e: HashedContent): string {
  const content = canonicalJson([
    e.chainSeq,
    e.id,
    e.eventId,
    e.event,
    e.entityType,
    e.entityId,
    e.actorId,
    e.actorType,
    e.organizationId,
    e.requestId,
    e.payload,
    e.createdAt,
    e.recordedAt,
  ]);
  return createHash('sha256').update(previous).update('\n').update(content).digest('hex');
}
