import 'reflect-metadata';
import { parseArgs } from 'node:util';
import { jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { EventPublisher, natsAuthConnectionOptions, natsAuthFrom } from '@herald/bus';
import { BaseConfig, loadConfig } from '@herald/config';
import { ActorType, EventInput, HeraldError } from '@herald/contracts';

const USAGE = `usage: npm run publish-event -- <type> '<data as JSON>' [--org <organizationId>] [--actor <id>] [--actor-type user|api_key|service|system] [--id evt_<ULID>]
  publishes one event on the events stream, as a commerce service would (SPEC 1), e.g.
  npm run publish-event -- orders.create '{"id":"o-1","orderNumber":"ORD-1","grandTotal":4999}'`;

/** Parses the command line into an event; throws a message for the user on anything wrong. */
export function eventFromArgs(argv: string[]): EventInput {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { org: { type: 'string' }, actor: { type: 'string' }, 'actor-type': { type: 'string' }, id: { type: 'string' } },
  });
  if (positionals.length !== 2) throw new Error(USAGE);
  const [type, json] = positionals;
  let data: unknown;
  try {
    data = JSON.parse(json);
  } catch {
    throw new Error(`data is not JSON: ${json}\n${USAGE}`);
  }
  return {
    type,
    data: data as Record<string, unknown>,
    ...(values.id ? { id: values.id } : {}),
    ...(values.org ? { organizationId: values.org } : {}),
    ...(values.actor ? { actor: { id: values.actor, type: (values['actor-type'] ?? 'user') as ActorType } } : {}),
  };
}

/** `npm run publish-event`: one event onto the stream, for trying Herald out and for scripts. */
async function main(): Promise<void> {
  const config = loadConfig(BaseConfig, process.env);
  const input = eventFromArgs(process.argv.slice(2));
  // As a commerce service would connect: with the `publisher` user of docker/nats/nats.conf when NATS_USER is set.
  const nc = await connect({ servers: config.natsServers, ...natsAuthConnectionOptions(natsAuthFrom(config)) });
  try {
    const { event, duplicate, seq } = await new EventPublisher(jetstream(nc), config.EVENTS_SUBJECT_PREFIX, config.EVENTS_MAX_MESSAGE_BYTES).publish(input);
    process.stdout.write(`${JSON.stringify({ id: event.id, type: event.type, seq, duplicate })}\n`);
  } finally {
    await nc.drain();
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    const details = err instanceof HeraldError && err.details ? `\n${JSON.stringify(err.details, null, 2)}` : '';
    process.stderr.write(`publish-event: ${err instanceof Error ? err.message : String(err)}${details}\n`);
    process.exit(1);
  });
}
