// Audit query: p50/p99 of each filter of GET /api/audit through the gateway (gateway -> NATS ->
// audit-writer -> Postgres) on 1,000,000 entries, against the same page query run directly on
// Postgres and sent straight over NATS to the audit-writer, in the same run.
//   node bench/audit-query/run.mjs [entries=1000000] [requests=300]
//   BENCH_EXPLAIN=1 prints each filter's plan; BENCH_PROFILE=<dir> writes CPU profiles of the services.
import { connect } from '@nats-io/transport-node';
import { NATS_URL, createBenchEnv, fmt, percentile } from '../env.mjs';

const ENTRIES = Number(process.argv[2] ?? 1_000_000);
const REQUESTS = Number(process.argv[3] ?? 300);
const WARMUP = 30;
const KEY = { 'x-api-key': 'dev-staff-key' };
const COLUMNS = 'id, event_id, event, entity_type, entity_id, actor_id, actor_type, organization_id, request_id, payload, created_at, recorded_at';

/** Bulk seed: a year of entries over 13 monthly partitions, 90% in organization `default`. */
async function seed(db) {
  await db.query(`select audit.ensure_partitions(now() - interval '1 year', now())`);
  const chunk = 100_000;
  for (let start = 1; start <= ENTRIES; start += chunk) {
    await db.query(
      `insert into audit.entries (id, event_id, event, entity_type, entity_id, actor_id, actor_type, organization_id, request_id, payload, created_at, recorded_at, chain_seq, hash)
       select 'aud_' || lpad(i::text, 26, '0'), 'evt_' || lpad(i::text, 26, '0'), m.module || '.' || (array['create','update','delete'])[1 + (i / 7) % 3],
              m.entity, 'e-' || (i % 50000), case when i % 5 = 0 then null else 'staff-' || (i % 500) end, 'user',
              case when i % 10 = 0 then 'org-' || (i % 7) else 'default' end, 'req-' || i, jsonb_build_object('id', 'e-' || (i % 50000), 'n', i, 'status', 'pending'),
              t.at, t.at + interval '1 second', i, md5(i::text) || md5(i::text)
       from generate_series($1::int, $2::int) i,
            lateral (select (array['orders','catalog','inventory','customers','pricing','promotions'])[1 + i % 6] as module,
                            (array['order','catalog','inventory','customer','pricing','promotion'])[1 + i % 6] as entity) m,
            lateral (select now() - interval '2 seconds' - ((i::bigint * 7919) % 31500000) * interval '1 second' as at) t`,
      [start, Math.min(ENTRIES, start + chunk - 1)],
    );
  }
  // Measured in the steady state of a table that size, not right after a bulk load: the vacuum that
  // the load would trigger in the background, and the checkpoint writing its pages out, are done now.
  await db.query('vacuum (analyze) audit.entries');
  await db.query('checkpoint');
}

async function time(fn) {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

const day = (n) => new Date(Date.now() - n * 86_400_000).toISOString();
const CASES = [
  ['no filter', () => ({}), 'organization_id = $1', () => []],
  ['entityType', () => ({ entityType: 'order' }), 'organization_id = $1 and entity_type = $2', () => ['order']],
  ['entityType + entityId', (k) => ({ entityType: 'order', entityId: `e-${(k * 6) % 50000}` }), 'organization_id = $1 and entity_type = $2 and entity_id = $3', (k) => ['order', `e-${(k * 6) % 50000}`]],
  ['event', (k) => ({ event: ['orders.update', 'catalog.create', 'pricing.delete'][k % 3] }), 'organization_id = $1 and event = $2', (k) => [['orders.update', 'catalog.create', 'pricing.delete'][k % 3]]],
  ['actorId', (k) => ({ actorId: `staff-${k % 500}` }), 'organization_id = $1 and actor_id = $2', (k) => [`staff-${k % 500}`]],
  ['from + to (one day)', (k) => ({ from: day(10 + (k % 300)), to: day(9 + (k % 300)) }), 'organization_id = $1 and created_at >= $2 and created_at <= $3', (k) => [day(10 + (k % 300)), day(9 + (k % 300))]],
  ['actorId + from', (k) => ({ actorId: `staff-${k % 500}`, from: day(90) }), 'organization_id = $1 and actor_id = $2 and created_at >= $3', (k) => [`staff-${k % 500}`, day(90)]],
];

const env = await createBenchEnv();
try {
  const seeded = await time(() => seed(env.db));
  console.log(`seeded ${fmt(ENTRIES)} entries in ${fmt(seeded / 1000, 1)} s (generate_series, 100,000 per statement)`);
  // BENCH_PROFILE=<dir>: V8 CPU profiles of both services, written when they exit.
  const prof = process.env.BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : [];
  await env.start('audit-writer', {}, prof);
  const { base } = await env.start('api-gateway', {}, prof);
  // The middle hop alone: the audit-writer's RPC over NATS, as the gateway sends it.
  const nc = await connect({ servers: NATS_URL });
  const subject = `${env.vars.RPC_SUBJECT_PREFIX}.audit-writer.audit.query`;
  const context = { organizationId: 'default', actorId: 'bench', requestId: 'bench' };
  const rows = [];
  for (const [name, filters, where, params] of CASES) {
    const sql = `select ${COLUMNS}, now() as as_of from audit.entries where ${where} order by created_at desc, id desc limit 51`;
    const direct = [];
    const rpc = [];
    const http = [];
    for (let k = 0; k < WARMUP + REQUESTS; k++) {
      const d = await time(() => env.db.query(sql, ['default', ...params(k)]));
      const r = await time(async () => {
        const reply = await nc.request(subject, JSON.stringify({ context, payload: filters(k) }), { timeout: 5000 });
        if (!reply.string().startsWith('{"data":')) throw new Error(`${name}: ${reply.string()}`);
      });
      const qs = new URLSearchParams(filters(k)).toString();
      const h = await time(async () => {
        const res = await fetch(`${base}/api/audit?${qs}`, { headers: KEY });
        if (res.status !== 200) throw new Error(`${name}: ${res.status} ${await res.text()}`);
        await res.arrayBuffer();
      });
      if (k >= WARMUP) {
        direct.push(d);
        rpc.push(r);
        http.push(h);
      }
    }
    for (const xs of [direct, rpc, http]) xs.sort((a, b) => a - b);
    rows.push({ name, p50: percentile(http, 50), p99: percentile(http, 99), rpcP50: percentile(rpc, 50), rpcP99: percentile(rpc, 99), sqlP50: percentile(direct, 50), sqlP99: percentile(direct, 99) });
  }
  // Paging: page 2 of each walk, through the cursor of page 1.
  {
    const http = [];
    for (let k = 0; k < WARMUP + REQUESTS; k++) {
      const first = await (await fetch(`${base}/api/audit?actorId=staff-${k % 500}`, { headers: KEY })).json();
      const h = await time(async () => (await fetch(`${base}/api/audit?actorId=staff-${k % 500}&cursor=${first.nextCursor}`, { headers: KEY })).arrayBuffer());
      if (k >= WARMUP) http.push(h);
    }
    http.sort((a, b) => a - b);
    rows.push({ name: 'actorId, page 2 (cursor)', p50: percentile(http, 50), p99: percentile(http, 99) });
  }
  {
    const http = [];
    for (let k = 0; k < WARMUP + REQUESTS; k++) {
      const h = await time(async () => (await fetch(`${base}/api/audit/order/e-${(k * 6) % 50000}`, { headers: KEY })).arrayBuffer());
      if (k >= WARMUP) http.push(h);
    }
    http.sort((a, b) => a - b);
    rows.push({ name: 'GET /api/audit/order/:id', p50: percentile(http, 50), p99: percentile(http, 99) });
  }
  // The floor of any request through the gateway: HTTP alone, no auth, no NATS, no database.
  {
    const http = [];
    for (let k = 0; k < WARMUP + REQUESTS; k++) {
      const h = await time(async () => (await fetch(`${base}/healthz`)).arrayBuffer());
      if (k >= WARMUP) http.push(h);
    }
    http.sort((a, b) => a - b);
    rows.push({ name: 'baseline: GET /healthz on the gateway', p50: percentile(http, 50), p99: percentile(http, 99) });
  }
  console.log(`\n${fmt(REQUESTS)} sequential requests per query (after ${WARMUP} warm-up), 50 entries per page; ms`);
  console.log('| query | gateway p50 | gateway p99 | NATS RPC p50 | NATS RPC p99 | SQL alone p50 | SQL alone p99 |');
  console.log('|---|---|---|---|---|---|---|');
  const cell = (v) => (v === undefined ? '' : fmt(v, 1));
  for (const r of rows) console.log(`| ${r.name} | ${cell(r.p50)} | ${cell(r.p99)} | ${cell(r.rpcP50)} | ${cell(r.rpcP99)} | ${cell(r.sqlP50)} | ${cell(r.sqlP99)} |`);
  if (process.env.BENCH_EXPLAIN) {
    for (const [name, , where, params] of CASES) {
      const plan = await env.db.query(`explain (analyze, buffers, costs off) select ${COLUMNS} from audit.entries where ${where} order by created_at desc, id desc limit 51`, ['default', ...params(7)]);
      console.log(`\n-- ${name}\n${plan.rows.map((r) => r['QUERY PLAN']).join('\n')}`);
    }
  }
  await nc.close();
} finally {
  await env.cleanup();
}
