import { NatsAuthOptions, natsAuthFrom } from './nats-auth';

export interface BusOptions {
  /** NATS servers. */
  servers: string[];
  /** Connection name, shown by the NATS server's monitoring. */
  name: string;
  eventsStream: string;
  eventsSubjectPrefix: string;
  rpcSubjectPrefix: string;
  /** Stream limits (SPEC 1: configuration). */
  maxAgeSeconds: number;
  duplicateWindowSeconds: number;
  replicas: number;
  /** EVENTS_MAX_MESSAGE_BYTES: the publisher refuses what the consumers would reject. */
  maxMessageBytes?: number;
  /** Credentials and TLS; unset connects anonymously. */
  auth?: NatsAuthOptions;
  /** Create or update the events stream at start-up (services that only do RPC skip it). */
  ensureStream?: boolean;
}

export const BUS_OPTIONS = Symbol('BUS_OPTIONS');

/** Reads the bus part of any service config. */
export function busOptionsFrom(config: Parameters<typeof natsAuthFrom>[0] & {
  natsServers: string[];
  EVENTS_STREAM: string;
  EVENTS_SUBJECT_PREFIX: string;
  RPC_SUBJECT_PREFIX: string;
  EVENTS_MAX_AGE_SECONDS: number;
  EVENTS_DUPLICATE_WINDOW_SECONDS: number;
  EVENTS_REPLICAS: number;
  EVENTS_MAX_MESSAGE_BYTES: number;
}, name: string): BusOptions {
  return {
    servers: config.natsServers,
    name,
    eventsStream: config.EVENTS_STREAM,
    eventsSubjectPrefix: config.EVENTS_SUBJECT_PREFIX,
    rpcSubjectPrefix: config.RPC_SUBJECT_PREFIX,
    maxAgeSeconds: config.EVENTS_MAX_AGE_SECONDS,
    duplicateWindowSeconds: config.EVENTS_DUPLICATE_WINDOW_SECONDS,
    replicas: config.EVENTS_REPLICAS,
    maxMessageBytes: config.EVENTS_MAX_MESSAGE_BYTES,
    auth: natsAuthFrom(config),
  };
}
