import { JetStreamClient, jetstream } from '@nats-io/jetstream';
import { NatsConnection } from '@nats-io/nats-core';
import { EventPublisher } from '@herald/bus';
import { EVENT_LIMITS, newId } from '@herald/contracts';
import { Client } from 'pg';
import { Receiver } from './receiver';
import { Stack, publisherFor, startStack, urlOf, waitFor } from './stack';

const KEY = { 'x-api-key': 'dev-staff-key', 'content-type': 'application/json' };
const MAX_MESSAGE_BYTES = 64 * 1024;

/**
 * Issue 13: hostile messages on the bus never stop or slow the pipeline. Each one, through the
 * running audit-writer and dispatcher, ends audited (and delivered when a webhook matches) or
 * recorded as rejected with its reason by both, and an ordinary event published after them all is
 * audited and delivered within seconds.
 */
describe('hostile events: each settles, none holds back the next', () => {
  let stack: Stack;
  let publisher: EventPublisher;
  let nc: NatsConnection;
  let js: JetStreamClient;
  let receiver: Receiver;
  let db: Client;
  const subject = (type: string) => `${stack.env.vars.EVENTS_SUBJECT_PREFIX}.${type}`;

  beforeAll(async () => {
    stack = await startStack({
      dispatcher: { EVENTS_MAX_MESSAGE_BYTES: String(MAX_MESSAGE_BYTES), WEBHOOK_SENDER_POLL_MS: '100', WEBHOOK_TIMEOUT_MS: '2000', WEBHOOK_LEASE_MS: '5000' },
      'audit-writer': { EVENTS_MAX_MESSAGE_BYTES: String(MAX_MESSAGE_BYTES) },
    });
    ({ publisher, nc } = await publisherFor(stack.env));
    js = jetstream(nc);
    receiver = await Receiver.start();
    db = new Client({ connectionString: stack.env.databaseUrl });
    await db.connect();
    const res = await fetch(`${stack.url}/api/webhooks`, { method: 'POST', headers: KEY, body: JSON.stringify({ url: receiver.url('/all'), events: ['*'] }) });
    expect(res.status).toBe(201);
  });

  afterAll(async () => {
    await db?.end();
    await receiver?.close();
    await nc?.close();
    await stack?.close();
  });

  const envelope = (fields: Record<string, unknown> = {}) => ({ id: newId('evt'), type: 'orders.create', timestamp: '2026-03-15T10:30:00.000Z', data: { id: 'o-1' }, ...fields });

  /** Publishes raw bytes, as a careless or hostile service could; returns the stream sequence. */
  async function raw(body: string | Buffer, type = 'orders.create'): Promise<number> {
    return (await js.publish(subject(type), body, { msgID: newId('evt') })).seq;
  }

  async function audited(eventId: string): Promise<boolean> {
    return (await db.query('select 1 from audit.entries where event_id = $1', [eventId])).rowCount === 1;
  }
  async function delivered(eventId: string): Promise<boolean> {
    return receiver.at('/all').some((r) => r.headers['x-commerce-event-id'] === eventId);
  }
  async function rejection(table: 'audit' | 'dispatch', seq: number): Promise<string | undefined> {
    return (await db.query<{ reason: string }>(`select reason from ${table}.rejected_events where stream_seq = $1`, [seq])).rows[0]?.reason;
  }

  /** An ordinary event, audited and delivered: how long it took. */
  async function ordinary(): Promise<number> {
    const started = Date.now();
    const { event } = await publisher.publish({ type: 'orders.create', data: { id: `ok-${started}` } });
    await waitFor(async () => (await audited(event.id)) && (await delivered(event.id)), 30_000, `ordinary event ${event.id}`);
    return Date.now() - started;
  }

  it('refuses each kind of hostile message with its reason, in both services, and the next event is not held back', async () => {
    const deep = (levels: number) => `${'['.repeat(levels)}${']'.repeat(levels)}`;
    const within = JSON.stringify(envelope({ data: { id: 'o-1', pad: '' } }));
    const cases: Array<[string, string | Buffer, RegExp, string?]> = [
      ['not JSON', 'this is not json', /^body is not JSON$/],
      ['a JSON array', '[1,2,3]', /envelope invalid: .*must be a JSON object/],
      ['a leap second', JSON.stringify(envelope({ timestamp: '2026-12-31T23:59:60Z' })), /timestamp must be an RFC 3339 date-time/],
      ['a six-digit year', JSON.stringify(envelope({ timestamp: '+002026-03-15T10:30:00Z' })), /timestamp must be an RFC 3339 date-time/],
      ['a week date', JSON.stringify(envelope({ timestamp: '2026-W11-1T10:30:00Z' })), /timestamp must be an RFC 3339 date-time/],
      ['year 0', JSON.stringify(envelope({ timestamp: '0000-01-01T00:00:00Z' })), /timestamp must be an RFC 3339 date-time/],
      ['nesting that breaks a recursive walk', `{"id":"${newId('evt')}","type":"orders.create","timestamp":"2026-03-15T10:30:00Z","data":{"x":${deep(30_000)}}}`, /deeper than 64 levels/],
      ['nesting one level past the limit', `{"id":"${newId('evt')}","type":"orders.create","timestamp":"2026-03-15T10:30:00Z","data":{"x":${deep(EVENT_LIMITS.maxDepth - 1)}}}`, /deeper than 64 levels/],
      ['a derived entity id too long for an index', JSON.stringify(envelope({ data: { id: 'x'.repeat(10_000) } })), /data\.id is longer than 200 characters/],
      ['a type too long', JSON.stringify(envelope({ type: `orders.${'a'.repeat(200)}` })), /type must be shorter than or equal to 100 characters/, `orders.${'a'.repeat(200)}`],
      ['an entity id too long', JSON.stringify(envelope({ entity: { type: 'order', id: 'y'.repeat(5000) } })), /id must be shorter than or equal to 200 characters/],
      ['a NUL in data', JSON.stringify(envelope({ data: { id: 'o-1', note: 'a\u0000b' } })), /NUL \(\\u0000\) or an unpaired UTF-16 surrogate/],
      ['a lone surrogate', JSON.stringify(envelope({ data: { id: 'o-1', note: '\ud800' } })), /NUL \(\\u0000\) or an unpaired UTF-16 surrogate/],
      ['a NUL in requestId', JSON.stringify(envelope({ requestId: 'r\u0000' })), /NUL \(\\u0000\)/],
      ['a message over EVENTS_MAX_MESSAGE_BYTES', within.replace('"pad":""', `"pad":"${'p'.repeat(MAX_MESSAGE_BYTES + 1 - Buffer.byteLength(within))}"`), /is 65537 bytes, over the limit of 65536 \(EVENTS_MAX_MESSAGE_BYTES\)/],
    ];
    const published: Array<[string, number, RegExp]> = [];
    for (const [name, body, reason, type] of cases) published.push([name, await raw(body, type), reason]);
    // A message of exactly the limit is taken.
    const atLimit = envelope({ data: { id: 'o-limit', pad: '' } });
    const atLimitBody = JSON.stringify(atLimit).replace('"pad":""', `"pad":"${'p'.repeat(MAX_MESSAGE_BYTES - Buffer.byteLength(JSON.stringify(atLimit)))}"`);
    expect(Buffer.byteLength(atLimitBody)).toBe(MAX_MESSAGE_BYTES);
    await raw(atLimitBody);

    const latency = await ordinary();
    expect(latency).toBeLessThan(10_000);
    for (const [name, seq, reason] of published) {
      for (const table of ['audit', 'dispatch'] as const) {
        const why = await waitFor(() => rejection(table, seq), 15_000, `${table} to reject ${name}`);
        expect({ name, table, why }).toEqual({ name, table, why: expect.stringMatching(reason) });
      }
    }
    await waitFor(async () => (await audited(atLimit.id)) && (await delivered(atLimit.id)), 15_000, 'the message at the limit');

    // What arrives hostile but well-formed is taken as it is.
    const odd = [newId('evt'), newId('evt'), newId('evt'), newId('evt')];
    await raw(`{"id":"${odd[0]}","type":"orders.create","timestamp":"2026-03-15T10:30:00Z","data":{"id":1e400,"note":"a huge number"}}`);
    await raw(`{"id":"${odd[1]}","type":"orders.create","timestamp":"2026-03-15T10:30:00.123456789+05:30","data":{"id":"o-nanos"}}`);
    await raw(`{"id":"${odd[2]}","type":"orders.create","timestamp":"2026-03-15T10:30:00Z","data":{"id":"o-proto","__proto__":{"admin":true},"lines":[{"constructor":{"prototype":1}}]}}`);
    await raw(`{"id":"${odd[3]}","type":"orders.create","timestamp":"2026-03-15T10:30:00Z","data":{"id":"o-pair","note":"\\ud83d\\ude00"}}`);
    for (const id of odd) await waitFor(async () => (await audited(id)) && (await delivered(id)), 15_000, `the odd but valid event ${id}`);
    expect((await db.query(`select entity_id from audit.entries where event_id = $1`, [odd[0]])).rows[0].entity_id).toBeNull();

    for (const [app, metric] of [[stack.auditWriter, 'herald_audit_events_rejected_total'], [stack.dispatcher, 'herald_dispatcher_events_rejected_total']] as const) {
      const text = await (await fetch(`${urlOf(app)}/metrics`)).text();
      expect(Number(new RegExp(`${metric}\\{[^}]*\\} (\\d+)`).exec(text)?.[1])).toBe(cases.length);
    }
  });

  it('an event that passes the door and that the database refuses is isolated: rejected alone, its batch-mates go through', async () => {
    // Real Postgres refusals of one event (as a constraint or a trigger of an operator's would be),
    // with an SQLSTATE that is not a data error: no retrying fixes them.
    await db.query(`create function public.refuse_marked() returns trigger language plpgsql as $$
      begin raise exception 'refused by a test trigger'; end $$`);
    await db.query(`create trigger refuse_marked before insert on audit.entries for each row when (new.payload ? 'refuseMe') execute function public.refuse_marked()`);
    await db.query(`create trigger refuse_marked before insert on dispatch.deliveries for each row when (strpos(new.body, 'refuseMe') > 0) execute function public.refuse_marked()`);
    try {
      const events = Array.from({ length: 60 }, (_, i) => publisher.prepare({ type: 'orders.create', data: i === 30 ? { id: `mate-${i}`, refuseMe: true } : { id: `mate-${i}` } }));
      // Published concurrently, so the consumers receive them in few batches.
      const acks = await Promise.all(events.map((e) => publisher.publishPrepared(e)));
      const poison = events[30];
      const reasons = await waitFor(
        async () => {
          const a = await rejection('audit', acks[30].seq);
          const d = await rejection('dispatch', acks[30].seq);
          return a !== undefined && d !== undefined ? { a, d } : undefined;
        },
        30_000,
        'the refused event to be rejected by both',
      );
      expect(reasons.a).toMatch(/^refused while handling it: P0001: refused by a test trigger/);
      expect(reasons.d).toMatch(/^refused while handling it: P0001: refused by a test trigger/);
      const mates = events.filter((e) => e !== poison);
      await waitFor(async () => (await Promise.all(mates.map(async (e) => (await audited(e.id)) && (await delivered(e.id))))).every(Boolean), 30_000, 'every batch-mate audited and delivered');
      expect(await audited(poison.id)).toBe(false);
      expect((await db.query(`select raw from audit.rejected_events where stream_seq = $1`, [acks[30].seq])).rows[0].raw.toString()).toContain(poison.id);
      expect(await ordinary()).toBeLessThan(10_000);
    } finally {
      await db.query('drop trigger refuse_marked on audit.entries');
      await db.query('drop trigger refuse_marked on dispatch.deliveries');
    }
  });

  it('an infrastructure failure is retried, not rejected: connections killed mid-stream lose and reject nothing', async () => {
    const rejectedNow = async () =>
      (await db.query<{ reason: string }>(`select reason from audit.rejected_events union all select reason from dispatch.rejected_events order by 1`)).rows.map((r) => r.reason);
    const rejectedBefore = await rejectedNow();
    const killing = (async () => {
      const until = Date.now() + 3000;
      while (Date.now() < until) {
        await db.query(`select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid() and application_name like 'herald-%'`);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const events: { id: string }[] = [];
    for (let i = 0; i < 100; i++) {
      events.push((await publisher.publish({ type: 'orders.create', data: { id: `infra-${i}` } })).event);
      await new Promise((r) => setTimeout(r, 20));
    }
    await killing;
    await waitFor(async () => (await Promise.all(events.map(async (e) => (await audited(e.id)) && (await delivered(e.id))))).every(Boolean), 60_000, 'every event audited and delivered');
    expect(await rejectedNow()).toEqual(rejectedBefore);
    const counts = await db.query(`select count(*)::int as n, count(distinct event_id)::int as d from audit.entries where payload->>'id' like 'infra-%'`);
    expect(counts.rows[0]).toEqual({ n: 100, d: 100 });
  });
});
