import fc from 'fast-check';
import { Client } from 'pg';
import { JetStreamManager, jetstreamManager } from '@nats-io/jetstream';
import { NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { newId } from '@herald/contracts';
import { sha256Hex } from '../../apps/api-gateway/src/auth/api-keys';
import { KEYS } from '../api-keys-fixture';
import { Stack, publisherFor, startStack, waitFor } from '../stack';
import { FuzzClient, FuzzRequest, FuzzResponse, OpenApiDocument, Tally, describeRequest, newTally, problemsWith, requestFrom } from './http-requests';
import { HERALD_HINTS } from './generators';

/**
 * Property-based fuzzing of the REST API through the running stack (gateway, dispatcher,
 * audit-writer on real Postgres and NATS). Requests come from the gateway's own OpenAPI document
 * and from hostile values (generators.ts). Sized for CI; `FUZZ_RUNS` sets the number of requests
 * of the first property (the others scale with it), `FUZZ_SEED` replays a run.
 */
const RUNS = Number(process.env.FUZZ_RUNS ?? 300);
const SEED = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const P2_RUNS = Math.max(20, Math.round(RUNS / 10));
const P3_RUNS = Math.max(40, Math.round(RUNS / 5));
/** Jest's timeout for a property of `runs` runs of about `msEach` (with room for a loaded machine). */
const timeoutFor = (runs: number, msEach: number) => 30_000 + runs * msEach;
const REPLAY = `FUZZ_SEED=${SEED} FUZZ_RUNS=${RUNS} npx jest test/fuzz/api-fuzz.integration-spec.ts`;

/** A key with every permission in a second organization, so audit scoping is tested too. */
const GLOBEX_ALL = 'hrld_test_globex_everything';
const API_KEYS = JSON.stringify([
  { id: 'acme-admin', organizationId: 'acme', sha256: sha256Hex(KEYS.acme), permissions: ['webhooks:manage', 'audit:read'] },
  { id: 'globex-admin', organizationId: 'globex', sha256: sha256Hex(KEYS.globex), permissions: ['webhooks:*'] },
  { id: 'acme-auditor', organizationId: 'acme', sha256: sha256Hex(KEYS.auditor), permissions: ['audit:read'] },
  { id: 'globex-all', organizationId: 'globex', sha256: sha256Hex(GLOBEX_ALL), permissions: ['*:*'] },
]);
const ALL_KEYS = [KEYS.acme, KEYS.globex, KEYS.auditor, GLOBEX_ALL, 'dev-staff-key'];

/** Runs a property with the run's seed; a failure names the seed and the command that replays it. */
async function check<T>(arb: fc.Arbitrary<T>, predicate: (value: T) => Promise<void>, numRuns: number): Promise<void> {
  const details = await fc.check(fc.asyncProperty(arb, predicate), { seed: SEED, numRuns, endOnFailure: process.env.FUZZ_SHRINK !== 'true' });
  if (details.failed) {
    // The error names the request (bodies cut); fast-check's own report would print them whole.
    const cause = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
    throw new Error(`Property failed after ${details.numRuns} runs (seed ${details.seed}, path ${details.counterexamplePath}, shrunk ${details.numShrinks} times):\n${cause}\n\nReplay: ${REPLAY} (FUZZ_SHRINK=true to shrink the counterexample)`);
  }
}

describe(`REST fuzz (seed ${SEED}, ${RUNS} requests; replay: ${REPLAY})`, () => {
  let stack: Stack;
  let client: FuzzClient;
  let pg: Client;
  let nc: NatsConnection;
  let publisherNc: NatsConnection | undefined;
  let jsm: JetStreamManager;
  let doc: OpenApiDocument;
  const tally: Tally = newTally();
  /** Webhooks the fuzz itself created, so later requests reach rows that exist. */
  const created: string[] = [];

  /** Sends and counts; a network error is a reset and fails the property. */
  async function send(req: FuzzRequest): Promise<FuzzResponse> {
    tally.requests++;
    let res: FuzzResponse;
    try {
      res = await client.send(req);
    } catch (err) {
      tally.resets++;
      throw new Error(`no answer (${(err as Error).message}) to ${describeRequest(req)}`);
    }
    tally.byStatus[res.status] = (tally.byStatus[res.status] ?? 0) + 1;
    if (res.status >= 500) tally.status5xx++;
    const problems = problemsWith(req, res);
    if (problems.some((p) => !p.startsWith('status '))) tally.nonEnvelope++;
    if (problems.length) throw new Error(`${problems.join('; ')}\n  request: ${describeRequest(req)}\n  answer: ${res.status} ${res.body.slice(0, 300)}`);
    if (res.status === 201 && req.method === 'POST') {
      const id = /"id":"(wh_[0-9A-Z]{26})"/.exec(res.body)?.[1];
      if (id) created.push(id);
    }
    return res;
  }

  beforeAll(async () => {
    // No rate limit (a 429 would hide every other answer); a day before a failed delivery is tried
    // again, so the rows property 3 watches change only if a request changes them.
    stack = await startStack({ 'api-gateway': { API_KEYS, RATE_LIMIT_MAX: '0' }, dispatcher: { WEBHOOK_RETRY_BASE_MS: String(24 * 3_600_000) } });
    client = new FuzzClient(stack.url);
    pg = new Client({ connectionString: stack.env.databaseUrl });
    await pg.connect();
    nc = await connect({ servers: stack.env.vars.NATS_URL });
    jsm = await jetstreamManager(nc);
    doc = (await (await fetch(`${stack.url}/api/docs`)).json()) as OpenApiDocument;
  });

  afterAll(async () => {
    // The figure docs/api.md quotes (printed for the long run).
    if (process.env.FUZZ_RUNS) process.stdout.write(`\nREST fuzz tally (seed ${SEED}): ${JSON.stringify(tally)}\n`);
    await client?.close();
    await nc?.close();
    await publisherNc?.close();
    await pg?.end();
    await stack?.close();
  });

  it('every answer is a success body or the error envelope with its status; never a 5xx or a reset', async () => {
    await check(requestFrom(doc, ALL_KEYS, () => created), async (req) => void (await send(req)), RUNS);
  }, timeoutFor(RUNS, 20));

  describe('a write that fails changes nothing', () => {
    /** Everything a write can change: webhooks (all organizations, soft deletes), deliveries, events. */
    async function snapshot(): Promise<string> {
      const { rows } = await pg.query(`
        select (select md5(coalesce(string_agg(w::text, '|' order by id), '')) from dispatch.webhooks w) as webhooks,
               (select md5(coalesce(string_agg(concat_ws(',', id, status, attempt_count, next_attempt_at), '|' order by id), '')) from dispatch.deliveries) as deliveries,
               (select count(*) from dispatch.outbox) as outbox,
               (select count(*) from audit.entries) as audit`);
      return JSON.stringify(rows[0]);
    }
    /**
     * Waits until every earlier write's event has reached the audit trail (none waits in the outbox,
     * and the audit has one entry per event on the stream), so a count that moves is this write's.
     */
    async function settled(): Promise<string> {
      return waitFor(async () => {
        const now = await snapshot();
        const { outbox, audit } = JSON.parse(now) as { outbox: string; audit: string };
        const onStream = (await jsm.streams.info(stack.env.vars.EVENTS_STREAM)).state.messages;
        const done = outbox === '0' && Number(audit) === onStream;
        if (!done) await new Promise((r) => setTimeout(r, 20));
        return done && now;
      }, 10_000, 'events to settle');
    }

    it('webhooks, deliveries, outbox and audit entries are unchanged after a refused POST, PATCH, DELETE or retry', async () => {
      const writes = { ...doc, paths: Object.fromEntries(Object.entries(doc.paths).map(([p, ops]) => [p, Object.fromEntries(Object.entries(ops).filter(([m]) => m !== 'get'))]).filter(([, ops]) => Object.keys(ops).length)) };
      if (!created.length) created.push(JSON.parse((await send({ method: 'POST', path: '/api/webhooks', headers: { 'x-api-key': KEYS.acme }, body: '{"url":"http://127.0.0.1:9/h","events":["*"]}' })).body).data.id);
      await check(
        requestFrom(writes, ALL_KEYS, () => created),
        async (req) => {
          const before = await settled();
          const res = await send(req);
          if (res.status < 400) return;
          const after = await settled();
          if (after !== before) throw new Error(`data changed after a ${res.status}: ${before} -> ${after}\n  request: ${describeRequest(req)}`);
        },
        P2_RUNS,
      );
    }, timeoutFor(P2_RUNS, 400));
  });

  describe('organization scoping', () => {
    it("another organization's key never sees, changes or learns of acme's webhook, delivery and audit entries", async () => {
      const hook = JSON.parse((await send({ method: 'POST', path: '/api/webhooks', headers: { 'x-api-key': KEYS.acme }, body: '{"url":"http://127.0.0.1:9/scoped","events":["orders.create"]}' })).body).data.id as string;
      let publisher;
      ({ publisher, nc: publisherNc } = await publisherFor(stack.env));
      const { event } = await publisher.publish({ type: 'orders.create', organizationId: 'acme', data: { id: 'o-scoped' } });
      const secretRows = `select md5(string_agg(concat_ws(',', id, status, attempt_count, next_attempt_at), '|' order by id)) as h from dispatch.deliveries where webhook_id = $1`;
      // The first attempt (to a closed port) is made and the next is a day away: the row holds still.
      const delivery = await waitFor(async () => (await pg.query(`select id from dispatch.deliveries where webhook_id = $1 and attempt_count > 0`, [hook])).rows[0]?.id as string | undefined, 15_000, 'the delivery');
      const entry = await waitFor(async () => (await pg.query(`select id from audit.entries where event_id = $1`, [event.id])).rows[0]?.id as string | undefined, 15_000, 'the audit entry');
      const hookEntry = await waitFor(async () => (await pg.query(`select id from audit.entries where entity_id = $1`, [hook])).rows[0]?.id as string | undefined, 15_000, 'the webhook audit entry');
      const secrets = [hook, delivery, event.id, entry, hookEntry];
      const rowOf = async () => JSON.stringify([(await pg.query('select w::text from dispatch.webhooks w where id = $1', [hook])).rows, (await pg.query(secretRows, [hook])).rows]);
      const rowBefore = await rowOf();
      const hints = { ...HERALD_HINTS, entityId: fc.constantFrom(hook, delivery, 'o-scoped'), actorId: fc.constant('acme-admin'), entityType: fc.constantFrom('webhook', 'order') };
      /** The same request with the secret ids swapped for ids that never existed. */
      const twinOf = (req: FuzzRequest): FuzzRequest => {
        let s = JSON.stringify(req);
        s = s.split(hook).join(newId('wh')).split(delivery).join(newId('dlv'));
        return JSON.parse(s) as FuzzRequest;
      };
      await check(
        requestFrom(doc, [KEYS.globex, GLOBEX_ALL], () => [hook, delivery], hints),
        async (req) => {
          const res = await send(req);
          const leaked = secrets.filter((s) => res.body.includes(s));
          if (leaked.length) throw new Error(`globex saw ${leaked.join(', ')}\n  request: ${describeRequest(req)}\n  answer: ${res.status} ${res.body.slice(0, 300)}`);
          if (req.path.includes(hook) || req.path.includes(delivery)) {
            // No hint that it exists: the same answer as for an id that never did.
            const twin = await send(twinOf(req));
            const code = (r: FuzzResponse) => (r.status >= 400 && req.method !== 'HEAD' ? (JSON.parse(r.body) as { error: { code: string } }).error.code : '');
            if (twin.status !== res.status || code(twin) !== code(res)) throw new Error(`acme's id answers ${res.status} ${code(res)}, an unknown one ${twin.status} ${code(twin)}\n  request: ${describeRequest(req)}`);
          }
          const rowNow = await rowOf();
          if (rowNow !== rowBefore) throw new Error(`acme's webhook or delivery changed\n  request: ${describeRequest(req)}`);
        },
        P3_RUNS,
      );
    }, timeoutFor(P3_RUNS, 60));
  });
});
