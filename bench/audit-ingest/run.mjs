// Audit ingest: events/s from publish to committed entry, through the built audit-writer, against
// a raw batched insert of the same rows into an identical table (same columns, indexes and
// partitioning) in the same run.   node bench/audit-ingest/run.mjs [events=20000]
import { connect } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { ulid } from 'ulid';
import { createBenchEnv, fmt } from '../env.mjs';

const N = Number(process.argv[2] ?? 20_000);
const BATCH = 500;
const TYPES = ['orders.create', 'orders.statusChange', 'catalog.update', 'inventory.afterAdjust', 'customers.update'];

function eventOf(i) {
  return {
    id: `evt_${ulid()}`,
    type: TYPES[i % TYPES.length],
    timestamp: new Date().toISOString(),
    actor: { id: `staff-${i % 50}`, type: 'user' },
    requestId: `req-${i}`,
    data: { id: `e-${i % 5000}`, orderNumber: `ORD-2026-${String(i).padStart(6, '0')}`, status: 'pending', grandTotal: 4999, currency: 'USD', customer: { email: 'a@example.com', password: 'x' } },
  };
}

async function rawInsert(db, events) {
  await db.query(`create table audit.bench_raw (like audit.entries including all) partition by range (recorded_at)`);
  await db.query(`create table audit.bench_raw_now partition of audit.bench_raw for values from (date_trunc('month', now())) to (date_trunc('month', now()) + interval '1 month')`);
  const started = performance.now();
  for (let i = 0; i < events.length; i += BATCH) {
    const cols = Array.from({ length: 14 }, () => []);
    events.slice(i, i + BATCH).forEach((e, j) => {
      [`aud_${ulid()}`, e.id, e.type, 'order', e.data.id, e.actor.id, e.actor.type, 'default', e.requestId, JSON.stringify(e.data), e.timestamp, new Date().toISOString(), i + j + 1, 'x'.repeat(64)].forEach((v, k) =>
        cols[k].push(v),
      );
    });
    await db.query('begin');
    await db.query(
      `insert into audit.bench_raw (id, event_id, event, entity_type, entity_id, actor_id, actor_type, organization_id, request_id, payload, created_at, recorded_at, chain_seq, hash)
       select * from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::jsonb[], $11::timestamptz[], $12::timestamptz[], $13::bigint[], $14::text[])`,
      cols,
    );
    await db.query('commit');
  }
  return events.length / ((performance.now() - started) / 1000);
}

async function waitForEntries(db, n) {
  for (;;) {
    const { rows } = await db.query('select count(*)::int as n from audit.entries');
    if (rows[0].n >= n) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function publishAll(js, env, events) {
  let inFlight = [];
  for (const e of events) {
    inFlight.push(js.publish(`${env.vars.EVENTS_SUBJECT_PREFIX}.${e.type}`, JSON.stringify(e), { msgID: e.id }));
    if (inFlight.length >= 2000) {
      await Promise.all(inFlight);
      inFlight = [];
    }
  }
  await Promise.all(inFlight);
}

/** A backlog: every event is in the stream before the writer starts; times the writer alone. */
async function backlog(env, events) {
  // The writer creates the stream and its durable consumer; then it is stopped while the backlog builds.
  await (await env.start('audit-writer')).stop();
  const nc = await connect({ servers: env.vars.NATS_URL });
  await publishAll(jetstream(nc), env, events);
  await nc.close();
  const profile = process.env.BENCH_PROFILE ? [`--cpu-prof`, `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : [];
  const { base } = await env.start('audit-writer', { CONSUMER_BATCH_SIZE: String(BATCH) }, profile);
  // Timed from the moment the writer is ready (start-up is not ingest), counting only what is left.
  const started = performance.now();
  const atReady = (await env.db.query('select count(*)::int as n from audit.entries')).rows[0].n;
  await waitForEntries(env.db, events.length);
  const rate = (events.length - atReady) / ((performance.now() - started) / 1000);
  const metrics = await (await fetch(`${base}/metrics`)).text();
  const count = Number(/herald_audit_batch_size_count\{[^}]*\} (\d+)/.exec(metrics)?.[1] ?? NaN);
  return { rate, meanBatch: events.length / count };
}

async function throughHerald(env, events) {
  const nc = await connect({ servers: env.vars.NATS_URL });
  const js = jetstream(nc);
  const started = performance.now();
  await publishAll(js, env, events);
  const published = performance.now();
  await waitForEntries(env.db, 2 * events.length);
  const done = performance.now();
  await nc.close();
  return { rate: events.length / ((done - started) / 1000), publishRate: events.length / ((published - started) / 1000) };
}

const env = await createBenchEnv();
try {
  const raw = await rawInsert(env.db, Array.from({ length: N }, (_, i) => eventOf(i)));
  const idle = await backlog(env, Array.from({ length: N }, (_, i) => eventOf(i)));
  // The writer keeps running: now it ingests while the events are being published.
  const herald = await throughHerald(env, Array.from({ length: N }, (_, i) => eventOf(i)));
  console.log(`events: ${fmt(N)}, batch ${BATCH}`);
  console.log(`raw batched insert into an identical table: ${fmt(raw)} rows/s`);
  console.log(`publish (JetStream, 2000 in flight):         ${fmt(herald.publishRate)} msg/s`);
  console.log(`publish -> committed audit entry (Herald):   ${fmt(herald.rate)} events/s`);
  console.log(`ratio Herald / raw insert:                   ${fmt(herald.rate / raw, 2)} (goal >= 0.6)`);
  console.log(`backlog already in the stream (writer alone): ${fmt(idle.rate)} events/s, mean batch ${fmt(idle.meanBatch)}; ratio ${fmt(idle.rate / raw, 2)}`);
} finally {
  await env.cleanup();
}
