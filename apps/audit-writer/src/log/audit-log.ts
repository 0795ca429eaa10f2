import type { RejectedMessage } from '@herald/bus';
import { Query, inTransaction } from '@herald/database';
import type { DataSource } from 'typeorm';
import { HashedContent, entryHash } from './entry-hash';

/** An entry to append; its position and hash are given by the chain. */
export type NewEntry = Omit<HashedContent, 'recordedAt' | 'chainSeq'> & {
  /** Only for moving existing entries (migrations); new entries get the database's clock. */
  recordedAt?: string;
};

interface HeadRow {
  organization_id: string;
  seq: string;
  hash: string;
  now: Date;
}

function monthOf(iso: string): string {
  return iso.slice(0, 7);
}

/**
 * The monthly partitions of audit.entries that one database is known to have (cached per owner).
 * A partition is created inside the caller's transaction, so it is known only once that commits
 * (`settle`): a batch that rolled back leaves no partition, and must leave no belief in one.
 */
export class Partitions {
  private readonly known = new Set<string>();
  /** Months created by the transaction in progress. */
  private pending = new Set<string>();

  /** Creates the partitions that cover [from, to] (idempotent, replica-safe: the function takes a lock). */
  async ensure(query: Query, from: Date, to: Date): Promise<void> {
    await query('select audit.ensure_partitions($1, $2)', [from.toISOString(), to.toISOString()]);
    for (let d = new Date(Date.UTC(from.getUTCFullYear(), from.getUTCMonth(), 1)); d <= to; d = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1))) {
      this.pending.add(monthOf(d.toISOString()));
    }
  }

  /** The transaction that ensured the pending months committed (they exist) or rolled back (they do not). */
  settle(committed: boolean): void {
    if (committed) for (const m of this.pending) this.known.add(m);
    this.pending = new Set();
  }

  /** Forgets every month: a partition was dropped behind this cache (a prune, an operator). */
  forget(): void {
    this.known.clear();
  }

  /** Makes sure the partitions of these instants exist, asking the database only about new months. */
  async cover(query: Query, isoInstants: Iterable<string>): Promise<void> {
    for (const m of new Set([...isoInstants].map(monthOf))) {
      if (!this.known.has(m)) await this.ensure(query, new Date(`${m}-01T00:00:00Z`), new Date(`${m}-01T00:00:00Z`));
    }
  }
}

/**
 * Appends entries to their organizations' hash chains, inside the caller's transaction. An event id
 * already recorded is skipped (redelivery), so this returns how many entries were really written.
 *
 * The chain heads of the batch's organizations are locked first (in a fixed order, so replicas
 * cannot deadlock), which serialises the writers of one organization across replicas; the entries
 * then take the next positions and the hashes that follow from the head's. The recording time is
 * the database's clock after the lock, never below the previous one, so an organization's chain is
 * ordered by `recorded_at` too, and dropping the oldest monthly partitions cuts only its beginning.
 */
export async function appendEntries(query: Query, partitions: Partitions, entries: NewEntry[]): Promise<number> {
  const unique = [...new Map(entries.map((e) => [e.eventId, e] as const)).values()];
  if (!unique.length) return 0;
  const orgs = [...new Set(unique.map((e) => e.organizationId))].sort();
  const heads = await query<HeadRow>(
    `insert into audit.chain_heads (organization_id) select unnest($1::text[])
     on conflict (organization_id) do update set organization_id = excluded.organization_id
     returning organization_id, seq, hash, greatest(clock_timestamp(), last_recorded_at) as now`,
    [orgs],
  );
  const fresh = new Set(
    (await query<{ event_id: string }>(`insert into audit.event_ids (event_id) select unnest($1::text[]) on conflict do nothing returning event_id`, [unique.map((e) => e.eventId)])).map(
      (r) => r.event_id,
    ),
  );
  const toWrite = unique.filter((e) => fresh.has(e.eventId));
  if (!toWrite.length) return 0;

  const now = new Date(Math.max(...heads.map((h) => new Date(h.now).getTime()))).toISOString();
  const chain = new Map(heads.map((h) => [h.organization_id, { seq: Number(h.seq), hash: h.hash, recordedAt: now }]));
  const cols: unknown[][] = Array.from({ length: 14 }, () => []);
  for (const e of toWrite) {
    const head = chain.get(e.organizationId)!;
    const recordedAt = e.recordedAt ?? now;
    const content: HashedContent = { ...e, recordedAt, chainSeq: head.seq + 1 };
    head.seq = content.chainSeq;
    head.hash = entryHash(head.hash, content);
    head.recordedAt = recordedAt > head.recordedAt ? recordedAt : head.recordedAt;
    [e.id, e.eventId, e.event, e.entityType, e.entityId, e.actorId, e.actorType, e.organizationId, e.requestId, JSON.stringify(e.payload), e.createdAt, recordedAt, head.seq, head.hash].forEach(
      (v, i) => cols[i].push(v),
    );
  }
  await partitions.cover(query, cols[11] as string[]);

  await query(
    `insert into audit.entries (id, event_id, event, entity_type, entity_id, actor_id, actor_type, organization_id, request_id, payload, created_at, recorded_at, chain_seq, hash)
     select * from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::jsonb[],
                          $11::timestamptz[], $12::timestamptz[], $13::bigint[], $14::text[])`,
    cols,
  ).catch((err: { code?: string; message?: string }) => {
    // 23514 "no partition of relation … found for row": the cache believed in a partition that is
    // gone; the next try asks the database again instead of refusing the entries for ever.
    if (err.code === '23514' && err.message?.includes('no partition')) partitions.forget();
    throw err;
  });
  const touched = [...chain.entries()];
  await query(
    `update audit.chain_heads h set seq = u.seq, hash = u.hash, last_recorded_at = u.recorded_at
     from unnest($1::text[], $2::bigint[], $3::text[], $4::timestamptz[]) as u(organization_id, seq, hash, recorded_at)
     where h.organization_id = u.organization_id`,
    [touched.map(([o]) => o), touched.map(([, h]) => h.seq), touched.map(([, h]) => h.hash), touched.map(([, h]) => h.recordedAt)],
  );
  return toWrite.length;
}

/**
 * Appends entries and records rejected messages in one transaction (the ingest's batch), and only
 * then lets the partitions it created be known.
 */
export async function writeBatch(ds: DataSource, partitions: Partitions, entries: NewEntry[], rejected: RejectedMessage[]): Promise<number> {
  try {
    const written = await inTransaction(ds, async (query) => {
      const n = await appendEntries(query, partitions, entries);
      await recordRejected(query, rejected);
      return n;
    });
    partitions.settle(true);
    return written;
  } catch (err) {
    partitions.settle(false);
    throw err;
  }
}

/** Records malformed or refused messages (SPEC 1), inside the caller's transaction. */
export async function recordRejected(query: Query, rejected: RejectedMessage[]): Promise<void> {
  if (!rejected.length) return;
  await query(
    `insert into audit.rejected_events (subject, raw, reason, stream_seq)
     select * from unnest($1::text[], $2::bytea[], $3::text[], $4::bigint[])`,
    [rejected.map((r) => r.subject), rejected.map((r) => r.raw), rejected.map((r) => r.reason), rejected.map((r) => r.streamSeq)],
  );
}
