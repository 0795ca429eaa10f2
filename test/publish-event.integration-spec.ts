import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { Stack, startStack, waitFor } from './stack';

/** `npm run publish-event`, run as users run it (the built tool), against a stack of this test's own. */
describe('publish-event tool', () => {
  let stack: Stack;
  const tool = join(__dirname, '../dist/tools/publish-event.js');
  const run = (...args: string[]) => spawnSync(process.execPath, [tool, ...args], { env: { PATH: process.env.PATH ?? '', ...stack.env.vars }, encoding: 'utf8' });

  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(() => stack.close());

  it('publishes an event that becomes an audit entry', async () => {
    const r = run('orders.create', '{"id":"o-tool-1","orderNumber":"ORD-1","cardNumber":"4111"}', '--actor', 'staff-7');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const printed = JSON.parse(r.stdout) as { id: string; type: string; duplicate: boolean };
    expect(printed).toMatchObject({ type: 'orders.create', duplicate: false });
    expect(printed.id).toMatch(/^evt_[0-9A-HJKMNP-TV-Z]{26}$/);

    const entries = await waitFor(async () => {
      const res = await fetch(`${stack.url}/api/audit/order/o-tool-1`, { headers: { 'x-api-key': 'dev-staff-key' } });
      const body = (await res.json()) as { data: Array<Record<string, unknown>> };
      return body.data.length ? body.data : undefined;
    });
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ eventId: printed.id, event: 'orders.create', actorId: 'staff-7', actorType: 'user', payload: { orderNumber: 'ORD-1', cardNumber: '[REDACTED]' } });
  });

  it('says the same id twice is a duplicate', () => {
    const id = 'evt_01JQZX3V8Y5T7K9M2N4P6R8S0A';
    expect(JSON.parse(run('catalog.update', '{"id":"p-1"}', '--id', id).stdout)).toMatchObject({ id, duplicate: false });
    expect(JSON.parse(run('catalog.update', '{"id":"p-1"}', '--id', id).stdout)).toMatchObject({ id, duplicate: true });
  });

  it.each([
    [['orders.create'], /usage: npm run publish-event/],
    [['orders.create', '{not json'], /data is not JSON/],
    [['orders', '{}'], /type/],
    [['orders.create', '[1,2]'], /data/],
    [['orders.create', '{}', '--actor', 'a', '--actor-type', 'robot'], /actor\.type must be one of user, api_key, service, system/],
  ])('refuses %j with a clear message and exit 1', (args, message) => {
    const r = run(...args);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^publish-event: /);
    expect(r.stderr).toMatch(message);
    expect(r.stdout).toBe('');
  });
});
