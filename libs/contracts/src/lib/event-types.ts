/** The 14 event types that can be delivered to webhooks (the seed's list). */
export const DELIVERABLE_EVENT_TYPES = [
  'orders.create',
  'orders.statusChange',
  'catalog.create',
  'catalog.update',
  'catalog.delete',
  'inventory.afterAdjust',
  'customers.create',
  'customers.update',
  'pricing.create',
  'pricing.update',
  'promotions.create',
  'promotions.update',
  'fulfillment.create',
  'cart.afterAddItem',
] as const;
export type DeliverableEventType = (typeof DELIVERABLE_EVENT_TYPES)[number];

/** Events Herald publishes about its own state changes, so they are audited like any other. */
export const WEBHOOK_EVENT_TYPES = ['webhooks.create', 'webhooks.update', 'webhooks.delete'] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

const deliverable: ReadonlySet<string> = new Set(DELIVERABLE_EVENT_TYPES);
export function isDeliverable(type: string): type is DeliverableEventType {
  return deliverable.has(type);
}

/** The modules of the deliverable types, for `<module>.*` selectors. */
export const DELIVERABLE_MODULES: readonly string[] = [...new Set(DELIVERABLE_EVENT_TYPES.map((t) => t.split('.')[0]))];

/** `<module>.<action>`: lower camel case words, as in `inventory.afterAdjust`. */
export const EVENT_TYPE_PATTERN = /^[a-z][a-zA-Z0-9]*\.[a-z][a-zA-Z0-9]*$/;

/** A webhook's `events` entry: one of the 14 types, `*`, or `<module>.*` of a deliverable module. */
export function isEventSelector(value: unknown): boolean {
  if (typeof value !== 'string') return false;
  if (value === '*' || deliverable.has(value)) return true;
  return value.endsWith('.*') && DELIVERABLE_MODULES.includes(value.slice(0, -2));
}

/** Whether an event type matches a webhook's selectors. */
export function selectorsMatch(selectors: readonly string[], type: string): boolean {
  const module = type.slice(0, type.indexOf('.'));
  return selectors.some((s) => s === '*' || s === type || s === `${module}.*`);
}

/** SPEC 1: the entity type of a module when an event carries no `entity`. */
const MODULE_ENTITY_TYPES: Readonly<Record<string, string>> = {
  orders: 'order',
  catalog: 'catalog',
  inventory: 'inventory',
  customers: 'customer',
  pricing: 'pricing',
  promotions: 'promotion',
  fulfillment: 'fulfillment',
  cart: 'cart',
  webhooks: 'webhook',
};

export function entityTypeOfModule(module: string): string {
  return MODULE_ENTITY_TYPES[module] ?? module;
}
