/** SPEC 3: the headers of every webhook request. Receivers de-duplicate on the event id. */
export const DeliveryHeader = {
  signature: 'x-commerce-signature',
  event: 'x-commerce-event',
  eventId: 'x-commerce-event-id',
  delivery: 'x-commerce-delivery',
  attempt: 'x-commerce-attempt',
} as const;

export const HERALD_VERSION = '0.1.0';
export const WEBHOOK_USER_AGENT = `Herald-Webhooks/${HERALD_VERSION}`;

/** Delivery ids: `dlv_` + ULID. */
export const DELIVERY_ID_PATTERN = /^dlv_[0-9A-HJKMNP-TV-Z]{26}$/;
