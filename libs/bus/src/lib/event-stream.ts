import { JetStreamApiError, JetStreamManager, RetentionPolicy, StorageType, StreamConfig } from '@nats-io/jetstream';
import { nanos } from '@nats-io/nats-core';
import { BusOptions } from './bus.options';

const STREAM_NOT_FOUND = 10059;

/**
 * Creates the events stream, or updates its limits when it exists: idempotent, so every replica of
 * every service may call it at start-up.
 */
export async function ensureEventStream(jsm: JetStreamManager, options: BusOptions): Promise<void> {
  const config: Partial<StreamConfig> = {
    subjects: [`${options.eventsSubjectPrefix}.>`],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    max_age: nanos(options.maxAgeSeconds * 1000),
    duplicate_window: nanos(options.duplicateWindowSeconds * 1000),
    num_replicas: options.replicas,
  };
  try {
    const info = await jsm.streams.info(options.eventsStream);
    const c = info.config;
    if (
      c.max_age !== config.max_age ||
      c.duplicate_window !== config.duplicate_window ||
      c.num_replicas !== config.num_replicas ||
      c.subjects.join() !== config.subjects!.join()
    ) {
      await jsm.streams.update(options.eventsStream, config);
    }
  } catch (err) {
    if (!(err instanceof JetStreamApiError) || err.code !== STREAM_NOT_FOUND) throw err;
    try {
      await jsm.streams.add({ name: options.eventsStream, ...config });
    } catch (addErr) {
      // Another replica created it between our look-up and our add: that is the state we wanted.
      if (!(addErr instanceof JetStreamApiError)) throw addErr;
      await jsm.streams.info(options.eventsStream);
    }
  }
}
