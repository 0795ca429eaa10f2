import { dataSourceOptions } from '@herald/database';
import { DataSource } from 'typeorm';
import { ulid } from 'ulid';
import { AUDIT_SCHEMA } from '../../apps/audit-writer/src/config';
import { NewEntry, Partitions, writeBatch } from '../../apps/audit-writer/src/log/audit-log';
import { TestEnv, createTestEnv, migrate } from '../stack';

const entry = (recordedAt: string, fields: Partial<NewEntry> = {}): NewEntry => ({
  id: `aud_${ulid()}`,
  eventId: `evt_${ulid()}`,
  event: 'orders.create',
  entityType: 'order',
  entityId: 'o-1',
  actorId: null,
  actorType: null,
  organizationId: 'default',
  requestId: null,
  payload: { id: 'o-1' },
  createdAt: recordedAt,
  recordedAt,
  ...fields,
});

/**
 * Issue 13, a defect found from outside: a month's partition created inside a batch transaction
 * that rolls back stayed in the writer's cache, and every later entry of that month was refused.
 * The batch path of the ingest (`writeBatch`) on the real database.
 */
describe('audit partitions: the writer believes in a partition only once its transaction committed', () => {
  let env: TestEnv;
  let ds: DataSource;

  beforeAll(async () => {
    env = await createTestEnv();
    await migrate(env);
    ds = await new DataSource(dataSourceOptions({ url: env.databaseUrl, schema: AUDIT_SCHEMA, migrations: [] })).initialize();
  });

  afterAll(async () => {
    await ds?.destroy();
    await env?.cleanup();
  });

  const partitionOf = async (month: string) => (await ds.query(`select to_regclass($1) as t`, [`audit.entries_p${month}`]))[0].t as string | null;

  it('a batch that rolls back after creating its month leaves neither the partition nor the belief in it', async () => {
    const partitions = new Partitions();
    // A batch whose month is new, refused by Postgres after the partition was created (text cannot hold NUL).
    await expect(writeBatch(ds, partitions, [entry('2031-05-10T00:00:00.000Z'), entry('2031-05-10T00:00:01.000Z', { requestId: 'r\u0000' })], [])).rejects.toMatchObject({ code: '22021' });
    expect(await partitionOf('203105')).toBeNull();
    // The next batch of that month creates the partition again and is written.
    await expect(writeBatch(ds, partitions, [entry('2031-05-11T00:00:00.000Z')], [])).resolves.toBe(1);
    expect(await partitionOf('203105')).toBe('audit.entries_p203105');
  });

  it('a partition dropped behind the cache is created again on the next try instead of refusing the month for ever', async () => {
    const partitions = new Partitions();
    await expect(writeBatch(ds, partitions, [entry('2032-07-01T00:00:00.000Z')], [])).resolves.toBe(1);
    await ds.query('drop table audit.entries_p203207');
    // The first try meets the missing partition; the cache forgets, and the retry (the consumer's split) succeeds.
    await expect(writeBatch(ds, partitions, [entry('2032-07-02T00:00:00.000Z')], [])).rejects.toMatchObject({ code: '23514' });
    await expect(writeBatch(ds, partitions, [entry('2032-07-03T00:00:00.000Z')], [])).resolves.toBe(1);
  });
});
