import { Injectable } from '@nestjs/common';
import { AuditEntryView, AuditQueryDto, HeraldError, RpcContext } from '@herald/contracts';
import { RpcResult } from '@herald/bus';
import { DataSource } from 'typeorm';

const DEFAULT_LIMIT = 50;

interface EntryRow {
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

/** A date without a time means the whole day: `from` its first instant, `to` its last. */
export function rangeBound(value: string, edge: 'from' | 'to'): Date {
  if (/^\d{4}-\d{2}-\d{2}$/.test(value)) {
    const start = new Date(`${value}T00:00:00.000Z`);
    return edge === 'from' ? start : new Date(start.getTime() + 86_400_000 - 1);
  }
  return new Date(value);
}

interface Cursor {
  createdAt: string;
  id: string;
}

function encodeCursor(row: EntryRow): string {
  return Buffer.from(JSON.stringify({ createdAt: row.created_at.toISOString(), id: row.id } satisfies Cursor)).toString('base64url');
}

function decodeCursor(cursor: string): Cursor {
  try {
    const c = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as Cursor;
    if (typeof c.id === 'string' && typeof c.createdAt === 'string' && !Number.isNaN(Date.parse(c.createdAt))) return c;
  } catch {
    // fall through to the validation error
  }
  throw HeraldError.validation([{ field: 'cursor', message: 'cursor is not a nextCursor returned by this API' }]);
}

function toView(r: EntryRow): AuditEntryView {
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

@Injectable()
export class AuditQueryService {
  constructor(private readonly ds: DataSource) {}

  /** Newest first (`createdAt` desc, `id` desc) with a keyset cursor, scoped to the caller's organization. */
  async query(q: AuditQueryDto, ctx: RpcContext): Promise<RpcResult<AuditEntryView[]>> {
    const where = ['organization_id = $1'];
    const params: unknown[] = [ctx.organizationId];
    const add = (sql: string, value: unknown) => {
      params.push(value);
      where.push(sql.replace('?', `$${params.length}`));
    };
    if (q.entityType !== undefined) add('entity_type = ?', q.entityType);
    if (q.entityId !== undefined) add('entity_id = ?', q.entityId);
    if (q.event !== undefined) add('event = ?', q.event);
    if (q.actorId !== undefined) add('actor_id = ?', q.actorId);
    if (q.from !== undefined) add('created_at >= ?', rangeBound(q.from, 'from'));
    if (q.to !== undefined) add('created_at <= ?', rangeBound(q.to, 'to'));
    if (q.cursor !== undefined) {
      const c = decodeCursor(q.cursor);
      params.push(c.createdAt, c.id);
      where.push(`(created_at, id) < ($${params.length - 1}::timestamptz, $${params.length})`);
    }
    const limit = q.limit ?? DEFAULT_LIMIT;
    params.push(limit + 1);
    const rows: EntryRow[] = await this.ds.query(
      `select * from audit.entries where ${where.join(' and ')} order by created_at desc, id desc limit $${params.length}`,
      params,
    );
    const page = rows.slice(0, limit);
    return { data: page.map(toView), nextCursor: rows.length > limit ? encodeCursor(page[page.length - 1]) : null };
  }
}
