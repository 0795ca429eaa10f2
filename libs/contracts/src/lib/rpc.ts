import { AuditEntryView, AuditQueryDto, AuditVerifyQueryDto, AuditVerifyView } from './audit.dto';
import { ErrorBody } from './errors';
import { ClassType } from './validation';
import {
  CreateWebhookDto,
  CreatedWebhookView,
  DeliveryDetailView,
  DeliveryView,
  IdRequest,
  ListDeliveriesRequest,
  UpdateWebhookRequest,
  WebhookView,
  EmptyRequest,
} from './webhook.dto';

export type ServiceName = 'dispatcher' | 'audit-writer';

/** One request/reply operation: who serves it, its subject suffix, and its payload classes. */
export interface RpcDef<Req extends object, Res> {
  service: ServiceName;
  pattern: string;
  request: ClassType<Req>;
  /** Phantom field that carries the reply type; never set. */
  readonly reply?: Res;
}

function rpc<Req extends object, Res>(service: ServiceName, pattern: string, request: ClassType<Req>): RpcDef<Req, Res> {
  return { service, pattern, request };
}


/** Every RPC pattern of Herald. Never rename a pattern that is deployed: add a new one. */
export const Rpc = {
  webhooksCreate: rpc<CreateWebhookDto, CreatedWebhookView>('dispatcher', 'webhooks.create', CreateWebhookDto),
  webhooksList: rpc<EmptyRequest, WebhookView[]>('dispatcher', 'webhooks.list', EmptyRequest),
  webhooksGet: rpc<IdRequest, WebhookView>('dispatcher', 'webhooks.get', IdRequest),
  webhooksUpdate: rpc<UpdateWebhookRequest, WebhookView>('dispatcher', 'webhooks.update', UpdateWebhookRequest),
  webhooksDelete: rpc<IdRequest, { deleted: true }>('dispatcher', 'webhooks.delete', IdRequest),
  deliveriesList: rpc<ListDeliveriesRequest, DeliveryView[]>('dispatcher', 'deliveries.list', ListDeliveriesRequest),
  deliveriesGet: rpc<IdRequest, DeliveryDetailView>('dispatcher', 'deliveries.get', IdRequest),
  deliveriesRetry: rpc<IdRequest, DeliveryView>('dispatcher', 'deliveries.retry', IdRequest),
  auditQuery: rpc<AuditQueryDto, AuditEntryView[]>('audit-writer', 'audit.query', AuditQueryDto),
  auditVerify: rpc<AuditVerifyQueryDto, AuditVerifyView>('audit-writer', 'audit.verify', AuditVerifyQueryDto),
} as const;

export type RpcName = keyof typeof Rpc;
export type RpcRequestOf<D> = D extends RpcDef<infer Req, unknown> ? Req : never;
export type RpcReplyOf<D> = D extends RpcDef<object, infer Res> ? Res : never;

export function rpcSubject(prefix: string, def: RpcDef<object, unknown>): string {
  return `${prefix}.${def.service}.${def.pattern}`;
}

/** Who is asking: carried with every RPC so services scope by organization and audit the actor. */
export interface RpcContext {
  organizationId: string;
  actorId: string;
  requestId: string;
}

export interface RpcRequestMessage<Req> {
  context: RpcContext;
  payload: Req;
}

/**
 * A reply is JSON whose first key is `data` or `error`: the text begins `{"data":` or `{"error":`,
 * so the gateway tells them apart without parsing. A `data` reply is exactly SPEC 2's success body
 * and goes out over HTTP byte for byte.
 */
export type RpcReplyMessage<Res> = { data: Res; nextCursor?: string | null } | { error: ErrorBody };

/** How every error reply begins (see RpcReplyMessage). */
export const RPC_ERROR_REPLY_PREFIX = '{"error":';
