import { Injectable } from '@nestjs/common';
import { AuditEntryView, AuditQueryDto, HeraldError, RpcContext, rangeBound } from '@herald/contracts';
import { RpcResult } from '@herald/bus';
import { DataSource } from 'typeorm';

const DEFAULT_LIMIT = 50;

export interface EntryRow {
  id: string;
  event_id: string;
  event: string;
  entity_type: string;
  entity_id: string | null;
  actor_id: string | null;
  actor_type: string | null;
  organization_id: string;
  request_id: string | null;
  payload: Record<string, unknown>;
  created_at: Date;
  recorded_at: Date;
}

/**
 * Where the previous page ended (`createdAt`, `id`), and the moment paging began: entries recorded
 * later are left out, so a walk through the pages sees the entries of that moment, each once.
 */
interface Cursor {
  createdAt: string;
  id: string;
  asOf: string;
}

const ENTRY_COLUMNS = 'id, event_id, event, entity_type, entity_id, actor_id, actor_type, organization_id, request_id, payload, created_at, recorded_at';

function encodeCursor(row: EntryRow, asOf: Date): string {
  const c: Cursor = { createdAt: row.created_at.toISOString(), id: row.id, asOf: asOf.toISOString() };
  return Buffer.from(JSON.stringify(c)).toString('base64url');
}

function decodeCursor(cursor: string): Cursor {
  try {
    const c = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as Partial<Cursor>;
    if (typeof c.id === 'string' && [c.createdAt, c.asOf].every((t) => typeof t === 'string' && !Number.isNaN(Date.parse(t)))) return c as Cursor;
  } catch {
    // fall through to the validation error
  }
  throw HeraldError.validation([{ field: 'cursor', message: 'cursor must be a nextCursor returned by this API' }]);
}

export function toView(r: EntryRow): AuditEntryView {
  return {
    id: r.id,
    eventId: r.event_id,
    event: r.event,
    entityType: r.entity_type,
    entityId: r.entity_id,
    actorId: r.actor_id,
    actorType: r.actor_type,
    organizationId: r.organization_id,
    requestId: r.request_id,
    payload: r.payload,
    createdAt: r.created_at.toISOString(),
    recordedAt: r.recorded_at.toISOString(),
  };
}

/**
 * The SQL of one page: newest first (`createdAt` desc, `id` desc), after the cursor, scoped to the
 * caller's organization. Each filter has an index that ends in that order (docs/audit.md shows the
 * plans; test/audit/audit-plans checks them).
 */
export function pageQuery(q: AuditQueryDto, organizationId: string): { sql: string; params: unknown[]; cursor?: Cursor; limit: number } {
  const where = ['organization_id = $1'];
  const params: unknown[] = [organizationId];
  const add = (sql: string, ...values: unknown[]) => {
    let i = 0;
    where.push(sql.replace(/\?/g, () => `$${params.push(values[i++])}`));
  };
  if (q.entityType !== undefined) add('entity_type = ?', q.entityType);
  if (q.entityId !== undefined) add('entity_id = ?', q.entityId);
  if (q.event !== undefined) add('event = ?', q.event);
  if (q.actorId !== undefined) add('actor_id = ?', q.actorId);
  if (q.from !== undefined) add('created_at >= ?', rangeBound(q.from, 'from'));
  if (q.to !== undefined) add('created_at <= ?', rangeBound(q.to, 'to'));
  const cursor = q.cursor === undefined ? undefined : decodeCursor(q.cursor);
  if (cursor) {
    add('(created_at, id) < (?::timestamptz, ?)', cursor.createdAt, cursor.id);
    add('recorded_at <= ?', cursor.asOf);
  }
  const limit = q.limit ?? DEFAULT_LIMIT;
  const sql = `select ${ENTRY_COLUMNS}, now() as as_of from audit.entries where ${where.join(' and ')} order by created_at desc, id desc limit $${params.push(limit + 1)}`;
  return { sql, params, cursor, limit };
}

@Injectable()
export class AuditQueryService {
  constructor(private readonly ds: DataSource) {}

  async query(q: AuditQueryDto, ctx: RpcContext): Promise<RpcResult<AuditEntryView[]>> {
    const { sql, params, cursor, limit } = pageQuery(q, ctx.organizationId);
    const rows: (EntryRow & { as_of: Date })[] = await this.ds.query(sql, params);
    const page = rows.slice(0, limit);
    const asOf = cursor ? new Date(cursor.asOf) : rows[0]?.as_of;
    return { data: page.map(toView), nextCursor: rows.length > limit ? encodeCursor(page[page.length - 1], asOf!) : null };
  }
}
