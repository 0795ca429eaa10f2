import { Client } from 'pg';
import { createTestEnv, migrate } from './stack';

describe('npm run migrate', () => {
  it('is idempotent and safe from several replicas at once', async () => {
    const env = await createTestEnv();
    try {
      await Promise.all([migrate(env), migrate(env), migrate(env)]);
      await migrate(env);
      const c = new Client({ connectionString: env.databaseUrl });
      await c.connect();
      const rows = await c.query(`select 'dispatch' as s, count(*)::int as n from dispatch.migrations union all select 'audit', count(*)::int from audit.migrations`);
      await c.end();
      for (const r of rows.rows) expect(r.n).toBeGreaterThan(0);
      const dispatch = rows.rows.find((r) => r.s === 'dispatch').n;
      // Each migration applied exactly once however many ran at the same moment.
      const c2 = new Client({ connectionString: env.databaseUrl });
      await c2.connect();
      const distinct = await c2.query(`select count(distinct name)::int as n from dispatch.migrations`);
      await c2.end();
      expect(distinct.rows[0].n).toBe(dispatch);
    } finally {
      await env.cleanup();
    }
  });
});
