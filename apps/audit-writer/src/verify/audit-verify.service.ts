import { Injectable } from '@nestjs/common';
import { AuditVerifyQueryDto, AuditVerifyView, RpcContext, rangeBound } from '@herald/contracts';
import { RpcResult } from '@herald/bus';
import { DataSource, EntityManager } from 'typeorm';
import { GENESIS_HASH, entryHash } from '../log/entry-hash';
import { EntryRow, toView } from '../query/audit-query.service';

const CHUNK = 2000;

interface ChainRow extends EntryRow {
  chain_seq: string;
  hash: string;
}

type Invalid = NonNullable<AuditVerifyView['firstInvalid']>;

/**
 * Walks an organization's hash chain in order and recomputes every hash, so an entry changed,
 * removed or inserted behind Herald's back (the triggers switched off, a restored backup) is found.
 * `from`/`to` limit the check to entries created in that range; the entry before the first one in
 * range anchors it (or the prune anchor, when older entries were dropped by retention).
 */
@Injectable()
export class AuditVerifyService {
  constructor(private readonly ds: DataSource) {}

  /** One snapshot for the whole walk, so entries appended meanwhile are not taken for insertions. */
  verify(q: AuditVerifyQueryDto, ctx: RpcContext): Promise<RpcResult<AuditVerifyView>> {
    return this.ds.transaction('REPEATABLE READ', (m) => new ChainWalk(m, ctx.organizationId).run(q));
  }
}

class ChainWalk {
  constructor(
    private readonly db: EntityManager,
    private readonly org: string,
  ) {}

  async run(q: AuditVerifyQueryDto): Promise<RpcResult<AuditVerifyView>> {
    const org = this.org;
    const [head] = await this.db.query<{ seq: string; hash: string }[]>('select seq, hash from audit.chain_heads where organization_id = $1', [org]);
    const [anchor] = await this.db.query<{ seq: string; hash: string }[]>('select seq, hash from audit.chain_anchors where organization_id = $1', [org]);
    const headSeq = head ? Number(head.seq) : 0;
    const anchorSeq = anchor ? Number(anchor.seq) : 0;
    const anchorHash = anchor?.hash ?? GENESIS_HASH;

    const range: string[] = [];
    const rangeParams: unknown[] = [];
    if (q.from !== undefined) range.push(`created_at >= $${rangeParams.push(rangeBound(q.from, 'from')) + 3}`);
    if (q.to !== undefined) range.push(`created_at <= $${rangeParams.push(rangeBound(q.to, 'to')) + 3}`);

    let checked = 0;
    let prev: { seq: number; hash: string } | undefined;
    let after = { seq: 0, id: '' };
    const invalid = (firstInvalid: Invalid): RpcResult<AuditVerifyView> => ({ data: { valid: false, checked, firstInvalid } });
    for (;;) {
      const rows: ChainRow[] = await this.db.query(
        `select * from audit.entries where organization_id = $1 and (chain_seq, id) > ($2, $3) ${range.map((r) => `and ${r}`).join(' ')}
         order by chain_seq, id limit ${CHUNK}`,
        [org, after.seq, after.id, ...rangeParams],
      );
      for (const r of rows) {
        checked++;
        const seq = Number(r.chain_seq);
        if (prev?.seq === seq) return invalid({ id: r.id, reason: `inserted: a second entry at chain position ${seq}` });
        if (seq > headSeq) return invalid({ id: r.id, reason: `inserted: chain position ${seq} is past the chain's head (${headSeq})` });
        if (seq <= anchorSeq) return invalid({ id: r.id, reason: `inserted: chain position ${seq} was pruned` });
        const previous = prev && prev.seq === seq - 1 ? prev.hash : await this.hashBefore(seq, anchorSeq, anchorHash);
        if (previous === undefined) return invalid({ id: r.id, reason: `removed: the entry before it (chain position ${seq - 1}) is missing` });
        if (previous === null) return invalid({ id: r.id, reason: `inserted: a second entry at chain position ${seq - 1}` });
        const expected = entryHash(previous, { ...toView(r), chainSeq: seq });
        if (expected !== r.hash) return invalid({ id: r.id, reason: 'changed: the entry does not match its hash' });
        prev = { seq, hash: r.hash };
      }
      if (rows.length < CHUNK) break;
      after = { seq: Number(rows[rows.length - 1].chain_seq), id: rows[rows.length - 1].id };
    }
    // The newest entries: the head must still be there, as it was written.
    if (headSeq > anchorSeq) {
      const [newest] = await this.db.query<{ hash: string }[]>('select hash from audit.entries where organization_id = $1 and chain_seq = $2', [org, headSeq]);
      if (newest?.hash !== head.hash) {
        const [last] = await this.db.query<{ id: string }[]>('select id from audit.entries where organization_id = $1 order by chain_seq desc limit 1', [org]);
        return invalid({ id: last?.id ?? null, reason: `removed: the newest entries (up to chain position ${headSeq}) are missing` });
      }
    }
    return { data: { valid: true, checked, firstInvalid: null } };
  }

  /** The hash the entry at `seq` follows: undefined when its predecessor is gone, null when there are two. */
  private async hashBefore(seq: number, anchorSeq: number, anchorHash: string): Promise<string | undefined | null> {
    if (seq - 1 === anchorSeq) return anchorHash;
    const rows = await this.db.query<{ hash: string }[]>('select hash from audit.entries where organization_id = $1 and chain_seq = $2', [this.org, seq - 1]);
    return rows.length === 1 ? rows[0].hash : rows.length === 0 ? undefined : null;
  }
}
