import { Injectable } from '@nestjs/common';
import {
  AttemptView,
  DELIVERY_ID_PATTERN,
  DeliveryDetailView,
  DeliveryStatus,
  DeliveryView,
  HeraldError,
  ListDeliveriesRequest,
  RpcContext,
} from '@herald/contracts';
import { RpcResult } from '@herald/bus';
import { queryRows } from '@herald/database';
import { DataSource } from 'typeorm';
import { DELIVERIES_CHANNEL } from './queue';
import { WEBHOOK_ID_PATTERN } from '../webhooks/webhooks.service';

const DEFAULT_LIMIT = 50;

interface DeliveryRow {
  id: string;
  webhook_id: string;
  event_id: string;
  event_type: string;
  status: DeliveryStatus;
  attempt_count: number;
  next_attempt_at: Date | null;
  last_status_code: number | null;
  created_at: Date;
  updated_at: Date;
  delivered_at: Date | null;
  /** created_at in microseconds since the epoch, exact (a JS Date keeps only milliseconds): the cursor. */
  created_us: string;
}

interface AttemptRow {
  attempt_number: number;
  started_at: Date;
  duration_ms: number;
  status_code: number | null;
  error: string | null;
  response_body: string | null;
}

/** The columns of a delivery row of table alias `d`. */
const COLUMNS = `d.id, d.webhook_id, d.event_id, d.event_type, d.status, d.attempt_count, d.next_attempt_at, d.last_status_code,
  d.created_at, d.updated_at, d.delivered_at, (extract(epoch from d.created_at) * 1000000)::bigint::text as created_us`;

function toView(r: DeliveryRow): DeliveryView {
  return {
    id: r.id,
    webhookId: r.webhook_id,
    eventId: r.event_id,
    eventType: r.event_type,
    status: r.status,
    attemptCount: r.attempt_count,
    nextAttemptAt: r.status === 'pending' && r.next_attempt_at ? r.next_attempt_at.toISOString() : null,
    lastStatusCode: r.last_status_code,
    createdAt: r.created_at.toISOString(),
    updatedAt: r.updated_at.toISOString(),
    deliveredAt: r.delivered_at ? r.delivered_at.toISOString() : null,
  };
}

function toAttempt(a: AttemptRow): AttemptView {
  return {
    attemptNumber: a.attempt_number,
    startedAt: a.started_at.toISOString(),
    durationMs: a.duration_ms,
    statusCode: a.status_code,
    error: a.error,
    responseBody: a.response_body,
  };
}

/** The cursor: the last row's (created_at in µs, id), opaque to callers. */
function encodeCursor(r: DeliveryRow): string {
  return Buffer.from(`${r.created_us}.${r.id}`).toString('base64url');
}

function decodeCursor(cursor: string): { us: string; id: string } {
  const m = /^(\d{1,20})\.(dlv_[0-9A-HJKMNP-TV-Z]{26})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!m) throw HeraldError.validation([{ field: 'cursor', message: 'cursor must be the nextCursor of a previous page' }]);
  return { us: m[1], id: m[2] };
}

/** Delivery history and manual retries (SPEC 2), scoped to the caller's organization. */
@Injectable()
export class DeliveriesService {
  constructor(private readonly ds: DataSource) {}

  /** Newest first; a deleted webhook's history stays readable. */
  async list(req: ListDeliveriesRequest, ctx: RpcContext): Promise<RpcResult<DeliveryView[]>> {
    if (!WEBHOOK_ID_PATTERN.test(req.webhookId)) throw HeraldError.notFound('Webhook');
    const owned = await this.ds.query('select 1 from dispatch.webhooks where id = $1 and organization_id = $2', [req.webhookId, ctx.organizationId]);
    if (!owned.length) throw HeraldError.notFound('Webhook');
    const limit = req.limit ?? DEFAULT_LIMIT;
    const after = req.cursor ? decodeCursor(req.cursor) : null;
    const rows: DeliveryRow[] = await this.ds.query(
      `select ${COLUMNS} from dispatch.deliveries d
       where webhook_id = $1 and ($2::text is null or status = $2)
         and ($3::bigint is null or (created_at, id) < (timestamptz 'epoch' + $3::bigint * interval '1 microsecond', $4::text))
       order by created_at desc, id desc limit $5`,
      [req.webhookId, req.status ?? null, after?.us ?? null, after?.id ?? null, limit + 1],
    );
    const page = rows.slice(0, limit);
    return { data: page.map(toView), nextCursor: rows.length > limit ? encodeCursor(page[page.length - 1]) : null };
  }

  async get(id: string, ctx: RpcContext): Promise<RpcResult<DeliveryDetailView>> {
    const row = await this.find(id, ctx);
    const attempts: AttemptRow[] = await this.ds.query(
      `select attempt_number, started_at, duration_ms, status_code, error, response_body from dispatch.attempts where delivery_id = $1 order by attempt_number`,
      [id],
    );
    return { data: { ...toView(row), attempts: attempts.map(toAttempt) } };
  }

  /**
   * Queues a failed or cancelled delivery again as a new run: a fresh budget of attempts, numbered
   * after the ones it already has, sent as soon as a sender is free.
   */
  async retry(id: string, ctx: RpcContext): Promise<RpcResult<DeliveryView>> {
    // Before the update: Postgres refuses some text (a NUL byte) with an error, which would be a 500.
    if (!DELIVERY_ID_PATTERN.test(id)) throw HeraldError.notFound('Delivery');
    const rows = await queryRows<DeliveryRow>(
      this.ds,
      `update dispatch.deliveries d set status = 'pending', run_base = d.attempt_count, next_attempt_at = now(), updated_at = now()
       from dispatch.webhooks w
       where d.id = $1 and d.organization_id = $2 and d.status in ('failed', 'cancelled')
         and w.id = d.webhook_id and w.is_active and w.deleted_at is null
       returning ${COLUMNS}`,
      [id, ctx.organizationId],
    );
    if (rows.length) {
      await this.ds.query(`select pg_notify('${DELIVERIES_CHANNEL}', '')`);
      return { data: toView(rows[0]) };
    }
    const current = await this.find(id, ctx);
    if (current.status === 'pending' || current.status === 'succeeded') {
      throw HeraldError.validation([{ field: 'id', message: `only a failed or cancelled delivery can be retried; this one is ${current.status}` }]);
    }
    throw HeraldError.validation([{ field: 'id', message: 'the webhook of this delivery is inactive or deleted; activate it first' }]);
  }

  private async find(id: string, ctx: RpcContext): Promise<DeliveryRow> {
    if (!DELIVERY_ID_PATTERN.test(id)) throw HeraldError.notFound('Delivery');
    const rows: DeliveryRow[] = await this.ds.query(`select ${COLUMNS} from dispatch.deliveries d where id = $1 and organization_id = $2`, [id, ctx.organizationId]);
    if (!rows.length) throw HeraldError.notFound('Delivery');
    return rows[0];
  }
}
