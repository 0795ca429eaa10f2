import { WebhooksDeliveries1764300000000 } from './1764300000000-webhooks-deliveries';
import { DeliveryRuns1764400000000 } from './1764400000000-delivery-runs';

/** Every migration of the dispatch schema, in order. Listed, not globbed, so the bundle carries them. */
export const DISPATCH_MIGRATIONS = [WebhooksDeliveries1764300000000, DeliveryRuns1764400000000];
