import { randomBytes } from 'node:crypto';
import { Injectable, Logger } from '@nestjs/common';
import {
  CreateWebhookDto,
  CreatedWebhookView,
  DomainEvent,
  HeraldError,
  RpcContext,
  UpdateWebhookRequest,
  WEBHOOK_SECRET_PREFIX,
  WebhookEventType,
  WebhookView,
} from '@herald/contracts';
import { BusService, RpcResult } from '@herald/bus';
import { Query, inTransaction } from '@herald/database';
import { DataSource } from 'typeorm';
import { ulid } from 'ulid';
import { DispatcherConfig } from '../config';
import { OutboxService } from './outbox.service';
import { SecretBox } from './secret-box';
import { checkWebhookUrl } from './url-policy';

export const WEBHOOK_ID_PATTERN = /^wh_[0-9A-HJKMNP-TV-Z]{26}$/;

interface WebhookRow {
  id: string;
  url: string;
  events: string[];
  is_active: boolean;
  metadata: Record<string, unknown>;
  created_at: Date;
  updated_at: Date;
}

function toView(r: WebhookRow): WebhookView {
  return { id: r.id, url: r.url, events: r.events, isActive: r.is_active, metadata: r.metadata, createdAt: r.created_at.toISOString(), updatedAt: r.updated_at.toISOString() };
}

const COLUMNS = 'id, url, events, is_active, metadata, created_at, updated_at';

/** Who acts when the dispatcher itself changes a webhook (a receiver's 410 Gone deactivates it). */
export const DISPATCHER_ACTOR = { id: 'dispatcher', type: 'system' } as const;

/** Webhook registrations of SPEC 2, scoped to the caller's organization; every change is published. */
@Injectable()
export class WebhooksService {
  // Lines carry the request id from the RPC context (libs/observability request context); never the secret or the URL.
  private readonly logger = new Logger('Webhooks');

  constructor(
    private readonly ds: DataSource,
    private readonly config: DispatcherConfig,
    private readonly box: SecretBox,
    private readonly bus: BusService,
    private readonly outbox: OutboxService,
  ) {}

  private async assertUrl(url: string): Promise<void> {
    const verdict = await checkWebhookUrl(url, { allowPrivate: this.config.WEBHOOKS_ALLOW_PRIVATE_URLS, httpsOnly: this.config.isProduction });
    if ('problem' in verdict) throw HeraldError.validation([{ field: 'url', message: verdict.problem }]);
  }

  /** The event that records a change, built now and published after the change commits (outbox). */
  private changeEvent(type: WebhookEventType, view: WebhookView, ctx: RpcContext): DomainEvent {
    return this.bus.publisher.prepare({
      type,
      organizationId: ctx.organizationId,
      actor: { id: ctx.actorId, type: 'api_key' },
      entity: { type: 'webhook', id: view.id },
      requestId: ctx.requestId,
      data: { ...view },
    });
  }

  /**
   * Deactivates the webhooks whose receiver answered 410 Gone, in the caller's transaction, and adds
   * a `webhooks.update` of each to the outbox there (actor: the dispatcher, type `system`; data: the
   * webhook as after the change, and why). Publish the returned events after the commit.
   */
  async deactivateGone(query: Query, ids: string[]): Promise<DomainEvent[]> {
    const rows = await query<WebhookRow & { organization_id: string }>(
      `update dispatch.webhooks set is_active = false, updated_at = now()
       where id = any($1) and is_active and deleted_at is null returning organization_id, ${COLUMNS}`,
      [ids],
    );
    const events: DomainEvent[] = [];
    for (const row of rows) {
      const event = this.bus.publisher.prepare({
        type: 'webhooks.update',
        organizationId: row.organization_id,
        actor: { ...DISPATCHER_ACTOR },
        entity: { type: 'webhook', id: row.id },
        data: { ...toView(row), reason: 'receiver answered 410 Gone' },
      });
      await this.outbox.add(query, event);
      events.push(event);
    }
    return events;
  }

  /** Publishes outbox events after their transaction committed, in the background (what fails is left to the relay). */
  publishChanges(events: DomainEvent[]): void {
    this.outbox.publishSoon(events);
  }

  async create(dto: CreateWebhookDto, ctx: RpcContext): Promise<RpcResult<CreatedWebhookView>> {
    await this.assertUrl(dto.url);
    const secret = dto.secret ?? `${WEBHOOK_SECRET_PREFIX}${randomBytes(32).toString('base64url')}`;
    const id = `wh_${ulid()}`;
    const { view, event } = await inTransaction(this.ds, async (query) => {
      const [row] = await query<WebhookRow>(
        `insert into dispatch.webhooks (id, organization_id, url, events, secret_ciphertext, is_active, metadata)
         values ($1, $2, $3, $4, $5, $6, $7) returning ${COLUMNS}`,
        [id, ctx.organizationId, dto.url, dedupe(dto.events), this.box.encrypt(secret, id), dto.isActive ?? true, JSON.stringify(dto.metadata ?? {})],
      );
      const view = toView(row);
      const event = this.changeEvent('webhooks.create', view, ctx);
      await this.outbox.add(query, event);
      return { view, event };
    });
    this.outbox.publishSoon([event]);
    this.logger.log({ webhookId: view.id, organizationId: ctx.organizationId, actorId: ctx.actorId }, 'Webhook created');
    return { data: { ...view, secret } };
  }

  async list(ctx: RpcContext): Promise<RpcResult<WebhookView[]>> {
    const rows: WebhookRow[] = await this.ds.query(
      `select ${COLUMNS} from dispatch.webhooks where organization_id = $1 and deleted_at is null order by created_at desc, id desc`,
      [ctx.organizationId],
    );
    return { data: rows.map(toView) };
  }

  async get(id: string, ctx: RpcContext): Promise<RpcResult<WebhookView>> {
    if (!WEBHOOK_ID_PATTERN.test(id)) throw HeraldError.notFound('Webhook');
    const rows: WebhookRow[] = await this.ds.query(
      `select ${COLUMNS} from dispatch.webhooks where id = $1 and organization_id = $2 and deleted_at is null`,
      [id, ctx.organizationId],
    );
    if (!rows.length) throw HeraldError.notFound('Webhook');
    return { data: toView(rows[0]) };
  }

  async update(req: UpdateWebhookRequest, ctx: RpcContext): Promise<RpcResult<WebhookView>> {
    if (!WEBHOOK_ID_PATTERN.test(req.id)) throw HeraldError.notFound('Webhook');
    if (req.url !== undefined) await this.assertUrl(req.url);
    const { view, event } = await inTransaction(this.ds, async (query) => {
      const rows = await query<WebhookRow>(
        `update dispatch.webhooks set
           url = coalesce($3, url), events = coalesce($4, events), is_active = coalesce($5, is_active),
           metadata = coalesce($6, metadata), updated_at = now()
         where id = $1 and organization_id = $2 and deleted_at is null returning ${COLUMNS}`,
        [req.id, ctx.organizationId, req.url ?? null, req.events ? dedupe(req.events) : null, req.isActive ?? null, req.metadata ? JSON.stringify(req.metadata) : null],
      );
      if (!rows.length) throw HeraldError.notFound('Webhook');
      const view = toView(rows[0]);
      const event = this.changeEvent('webhooks.update', view, ctx);
      await this.outbox.add(query, event);
      return { view, event };
    });
    this.outbox.publishSoon([event]);
    this.logger.log({ webhookId: view.id, organizationId: ctx.organizationId, actorId: ctx.actorId }, 'Webhook updated');
    return { data: view };
  }

  /** Soft delete: the row stays so delivery history keeps its webhook; pending deliveries are cancelled. */
  async delete(id: string, ctx: RpcContext): Promise<RpcResult<{ deleted: true }>> {
    if (!WEBHOOK_ID_PATTERN.test(id)) throw HeraldError.notFound('Webhook');
    const event = await inTransaction(this.ds, async (query) => {
      const rows = await query<WebhookRow>(
        `update dispatch.webhooks set deleted_at = now(), is_active = false, updated_at = now()
         where id = $1 and organization_id = $2 and deleted_at is null returning ${COLUMNS}`,
        [id, ctx.organizationId],
      );
      if (!rows.length) throw HeraldError.notFound('Webhook');
      await query(
        `update dispatch.deliveries set status = 'cancelled', next_attempt_at = null, updated_at = now()
         where webhook_id = $1 and status = 'pending'`,
        [id],
      );
      const event = this.changeEvent('webhooks.delete', toView(rows[0]), ctx);
      await this.outbox.add(query, event);
      return event;
    });
    this.outbox.publishSoon([event]);
    this.logger.log({ webhookId: id, organizationId: ctx.organizationId, actorId: ctx.actorId }, 'Webhook deleted');
    return { data: { deleted: true } };
  }
}

function dedupe(events: string[]): string[] {
  return [...new Set(events)];
}
