import { EventPublisher } from '@herald/bus';
import { newId } from '@herald/contracts';
import { Query } from '@herald/database';

export const PRUNE_EVENT_TYPE = 'audit.prune';

export interface PruneResult {
  id: string;
  eventId: string;
  before: string;
  /** The partitions dropped, oldest first. */
  partitions: string[];
  entries: number;
}

/** `audit.entries_pYYYYMM` holds the entries recorded in that month (UTC); its end is the next month. */
function partitionEnd(name: string): Date | null {
  const m = /^entries_p(\d{4})(\d{2})$/.exec(name);
  return m ? new Date(Date.UTC(Number(m[1]), Number(m[2]), 1)) : null;
}

/**
 * Drops every monthly partition of entries recorded entirely before `before`, inside the caller's
 * transaction, and records it: the prune itself (audit.prunes) and, per organization, the position
 * and hash of its last dropped entry (audit.chain_anchors), where verification starts from now on.
 * Partitions hold whole months of recording time and each organization's chain is ordered by it,
 * so a prune removes the beginning of each chain and never a piece from its middle.
 */
export async function pruneBefore(query: Query, before: Date): Promise<PruneResult> {
  // The partition lock keeps ensure_partitions out; locking the chain heads waits for batches in flight.
  await query(`select pg_advisory_xact_lock(hashtext('herald:audit:partitions'))`);
  await query(`select organization_id from audit.chain_heads order by organization_id for update`);
  const all = await query<{ name: string }>(`select c.relname as name from pg_inherits i join pg_class c on c.oid = i.inhrelid where i.inhparent = 'audit.entries'::regclass`);
  const partitions = all
    .map((p) => p.name)
    .filter((name) => {
      const end = partitionEnd(name);
      return end !== null && end.getTime() <= before.getTime();
    })
    .sort();
  let entries = 0;
  if (partitions.length) {
    const union = partitions.map((p) => `select organization_id, chain_seq, hash from audit.${p}`).join(' union all ');
    const counted = await query<{ n: string }>(`select count(*) as n from (${union}) dropped`);
    entries = Number(counted[0].n);
    await query(
      `insert into audit.chain_anchors (organization_id, seq, hash)
       select distinct on (organization_id) organization_id, chain_seq, hash from (${union}) dropped order by organization_id, chain_seq desc
       on conflict (organization_id) do update set seq = excluded.seq, hash = excluded.hash where excluded.seq > audit.chain_anchors.seq`,
    );
    for (const p of partitions) await query(`drop table audit.${p}`);
  }
  // Event ids are kept to refuse redeliveries; the stream keeps events for days, not months.
  await query(`delete from audit.event_ids where recorded_at < $1`, [before.toISOString()]);
  const result: PruneResult = { id: newId('prn'), eventId: newId('evt'), before: before.toISOString(), partitions, entries };
  await query(`insert into audit.prunes (id, before, partitions, entries, event_id) values ($1, $2, $3, $4, $5)`, [
    result.id,
    result.before,
    partitions,
    entries,
    result.eventId,
  ]);
  return result;
}

/**
 * Publishes `audit.prune` for every prune not published yet (this one, and any whose publish failed
 * before), so the prune is itself in the audit trail. `Nats-Msg-Id` is the stored event id, so a
 * second publish of the same prune is dropped by JetStream, and the audit-writer dedupes it anyway.
 */
export async function publishPrunes(query: Query, publisher: EventPublisher, actorId: string): Promise<number> {
  const pending = await query<{ id: string; event_id: string; before: Date; partitions: string[]; entries: string; pruned_at: Date }>(
    `select id, event_id, before, partitions, entries, pruned_at from audit.prunes where published_at is null order by pruned_at`,
  );
  for (const p of pending) {
    await publisher.publish({
      id: p.event_id,
      type: PRUNE_EVENT_TYPE,
      timestamp: p.pruned_at.toISOString(),
      actor: { id: actorId, type: 'system' },
      entity: { type: 'auditPrune', id: p.id },
      data: { id: p.id, before: p.before.toISOString(), partitions: p.partitions, entries: Number(p.entries) },
    });
    await query(`update audit.prunes set published_at = now() where id = $1`, [p.id]);
  }
  return pending.length;
}
