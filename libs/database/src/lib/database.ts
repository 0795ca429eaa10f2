import { Client, ClientConfig } from 'pg';
import { DataSource, DataSourceOptions, MigrationInterface } from 'typeorm';

export type MigrationClass = new () => MigrationInterface;

export interface SchemaOptions {
  url: string;
  /** The Postgres schema this service owns; no service reads another's. */
  schema: string;
  migrations: MigrationClass[];
  poolSize?: number;
  applicationName?: string;
  /**
   * How Postgres plans the service's named prepared statements (unnamed ones, which TypeORM's
   * `query` sends, are always planned for their values). Default: Postgres's own (`auto`).
   */
  planCacheMode?: 'auto' | 'force_generic_plan' | 'force_custom_plan';
}

/**
 * A pool's pg Client that always has an 'error' listener. pg reports a connection's death (the
 * server's FATAL when a backend is terminated, a reset) as an event; pg-pool listens only while the
 * client is idle and TypeORM only while a query runner holds it, so an error in between (a client
 * being released as the server kills it) was an unhandled 'error' that crashed the process. The
 * query in progress still fails with the error, and the pool discards the client.
 */
class PoolClient extends Client {
  constructor(config?: string | ClientConfig) {
    super(config);
    this.on('error', () => undefined);
  }
}

export function dataSourceOptions(o: SchemaOptions): DataSourceOptions {
  return {
    type: 'postgres',
    url: o.url,
    schema: o.schema,
    migrations: o.migrations,
    migrationsTableName: 'migrations',
    entities: [],
    synchronize: false,
    logging: false,
    extra: {
      Client: PoolClient,
      max: o.poolSize ?? 10,
      application_name: o.applicationName ?? `herald-${o.schema}`,
      ...(o.planCacheMode ? { options: `-c plan_cache_mode=${o.planCacheMode}` } : {}),
    },
  };
}

/** Creates the database named in `url` when it is missing (SPEC 5: `npm start` on a bare server). */
export async function ensureDatabase(url: string): Promise<void> {
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.slice(1));
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    const found = await client.query('select 1 from pg_database where datname = $1', [name]);
    if (found.rowCount === 0) {
      await client.query(`create database "${name.replace(/"/g, '""')}"`).catch((err: { code?: string }) => {
        if (err.code !== '42P04') throw err; // created meanwhile by another process
      });
    }
  } finally {
    await client.end();
  }
}

/**
 * Applies a schema's migrations, once, however many replicas run this at the same moment: an
 * advisory lock per schema serialises them, and TypeORM skips what its table says is applied.
 */
export async function migrateSchema(o: SchemaOptions): Promise<string[]> {
  await ensureDatabase(o.url);
  const lock = new Client({ connectionString: o.url });
  await lock.connect();
  try {
    await lock.query('select pg_advisory_lock(hashtext($1))', [`herald:migrate:${o.schema}`]);
    await lock.query(`create schema if not exists "${o.schema}"`);
    const ds = new DataSource(dataSourceOptions({ ...o, poolSize: 2 }));
    await ds.initialize();
    try {
      const applied = await ds.runMigrations({ transaction: 'each' });
      return applied.map((m) => m.name);
    } finally {
      await ds.destroy();
    }
  } finally {
    await lock.query('select pg_advisory_unlock(hashtext($1))', [`herald:migrate:${o.schema}`]).catch(() => undefined);
    await lock.end();
  }
}

/** A query inside a transaction; rows are typed by the caller. */
export type Query = <Row = Record<string, unknown>>(sql: string, params?: unknown[]) => Promise<Row[]>;

/** Runs `fn` in one transaction on a pooled connection. */
export async function inTransaction<T>(ds: DataSource, fn: (query: Query) => Promise<T>): Promise<T> {
  const runner = ds.createQueryRunner();
  await runner.connect();
  await runner.startTransaction();
  try {
    // The structured result: a plain `query` gives `[rows, count]` for UPDATE/DELETE ... RETURNING.
    const query: Query = async (sql, params) => (await runner.query(sql, params, true)).records;
    const result = await fn(query);
    await runner.commitTransaction();
    return result;
  } catch (err) {
    await runner.rollbackTransaction().catch(() => undefined);
    throw err;
  } finally {
    await runner.release();
  }
}

/** Rows of one statement outside a transaction, also for UPDATE/DELETE ... RETURNING (where `ds.query` gives `[rows, count]`). */
export async function queryRows<Row = Record<string, unknown>>(ds: DataSource, sql: string, params?: unknown[]): Promise<Row[]> {
  const runner = ds.createQueryRunner();
  try {
    return (await runner.query(sql, params, true)).records;
  } finally {
    await runner.release();
  }
}
