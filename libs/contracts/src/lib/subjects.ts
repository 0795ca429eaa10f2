/** Stream and subject names. The prefixes are configuration so that tests and several stacks can
 * share one NATS without seeing each other's traffic; the defaults are the contract of SPEC 1. */
export const DEFAULT_EVENTS_STREAM = 'COMMERCE_EVENTS';
export const DEFAULT_EVENTS_SUBJECT_PREFIX = 'commerce.events';
export const DEFAULT_RPC_SUBJECT_PREFIX = 'herald.rpc';

export function eventSubject(prefix: string, type: string): string {
  return `${prefix}.${type}`;
}

/** The event type a subject carries, or null when the subject is not under the prefix. */
export function eventTypeOfSubject(prefix: string, subject: string): string | null {
  return subject.startsWith(`${prefix}.`) ? subject.slice(prefix.length + 1) : null;
}

/** Header names shared by HTTP and NATS messages. */
export const REQUEST_ID_HEADER = 'x-request-id';
export const NATS_MSG_ID_HEADER = 'Nats-Msg-Id';
