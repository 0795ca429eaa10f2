import { createHash } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { AuditEntryView, AuditQueryDto, HeraldError, RpcContext, rangeBound } from '@herald/contracts';
import { JsonText, RpcResult } from '@herald/bus';
import type { PoolClient } from 'pg';
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

/** An instant as `toISOString()` prints it (UTC, milliseconds), printed by Postgres. */
const iso = (column: string) => `to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

/**
 * Each field of AuditEntryView and the SQL that prints it from a page row `e`: Postgres writes every
 * entry's JSON (`row_to_json`, compact, in this order), so the driver parses no `jsonb` and no
 * timestamp and the page is printed once. The mapped type makes a field added to the view a compile
 * error here. Written as SQL rather than `JSON.stringify(toView(row))` because parsing `payload`
 * only to print it again was most of the audit-writer's work per page.
 */
const VIEW_FIELDS: { [K in keyof AuditEntryView]-?: string } = {
  id: 'e.id',
  eventId: 'e.event_id',
  event: 'e.event',
  entityType: 'e.entity_type',
  entityId: 'e.entity_id',
  actorId: 'e.actor_id',
  actorType: 'e.actor_type',
  organizationId: 'e.organization_id',
  requestId: 'e.request_id',
  payload: 'e.payload',
  createdAt: iso('e.created_at'),
  recordedAt: iso('e.recorded_at'),
};
const VIEW_SELECT = Object.entries(VIEW_FIELDS).map(([field, sql]) => `${sql} as "${field}"`).join(', ');

interface PageRow {
  /** The entry's AuditEntryView as JSON text. */
  json: string;
  id: string;
  created_at: string;
  as_of: string;
}

function encodeCursor(row: PageRow, asOf: string): string {
  const c: Cursor = { createdAt: row.created_at, id: row.id, asOf };
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
  // Printed above the limit: inside it, the planner would price printing every candidate row and
  // could then prefer reading and sorting a partition over walking its index in order.
  const page = `select ${ENTRY_COLUMNS} from audit.entries where ${where.join(' and ')} order by created_at desc, id desc limit $${params.push(limit + 1)}`;
  const sql = `select j.json, e.id, ${iso('e.created_at')} as created_at, ${iso('now()')} as as_of
    from (${page}) e cross join lateral (select row_to_json(v)::text as json from (select ${VIEW_SELECT}) v) j
    order by e.created_at desc, e.id desc`;
  return { sql, params, cursor, limit };
}

@Injectable()
export class AuditQueryService {
  /** SQL of a page shape → the name it is prepared under on each connection. */
  private readonly statements = new Map<string, string>();

  constructor(private readonly ds: DataSource) {}

  async query(q: AuditQueryDto, ctx: RpcContext): Promise<RpcResult<AuditEntryView[]>> {
    const { sql, params, cursor, limit } = pageQuery(q, ctx.organizationId);
    const rows = await this.prepared<PageRow>(sql, params);
    const page = rows.slice(0, limit);
    const asOf = cursor ? cursor.asOf : rows[0]?.as_of;
    return {
      data: new JsonText(`[${page.map((r) => r.json).join(',')}]`),
      nextCursor: rows.length > limit ? encodeCursor(page[page.length - 1], asOf!) : null,
    };
  }

  /**
   * Runs a page as a named prepared statement (one name per filter combination, prepared once per
   * pooled connection). Planning a query over every monthly partition costs more than running it
   * (0.7-2 ms against well under 1). Left to itself (plan_cache_mode auto), Postgres kept planning
   * the shapes whose custom plan it rates cheaper than the generic one (no filter, event,
   * entityType, from/to in the organization holding most entries), so the audit-writer's
   * connections use `force_generic_plan` (app.module.ts): each filter's index serves the generic
   * plan as well (test/audit/audit-plans). TypeORM's `query` cannot name a statement, so this uses
   * the pooled pg client under its query runner.
   */
  private async prepared<Row>(sql: string, params: unknown[]): Promise<Row[]> {
    let name = this.statements.get(sql);
    if (name === undefined) {
      name = `herald_audit_page_${createHash('sha256').update(sql).digest('hex').slice(0, 24)}`;
      this.statements.set(sql, name);
    }
    const runner = this.ds.createQueryRunner();
    try {
      const client = (await runner.connect()) as PoolClient;
      return (await client.query<Row & object>({ name, text: sql, values: params })).rows;
    } finally {
      await runner.release();
    }
  }
}
