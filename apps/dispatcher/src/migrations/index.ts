import { WebhooksDeliveries1764300000000 } from './1764300000000-webhooks-deliveries';

/** Every migration of the dispatch schema, in order. Listed, not globbed, so the bundle carries them. */
export const DISPATCH_MIGRATIONS = [WebhooksDeliveries1764300000000];
