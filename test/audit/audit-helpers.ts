import { createHash } from 'node:crypto';
import { Client } from 'pg';
import { TestEnv } from '../stack';

export const DEV_KEY = { 'x-api-key': 'dev-staff-key' };

/** A Postgres client on the test's own database (the caller ends it). */
export async function dbOf(env: TestEnv): Promise<Client> {
  const db = new Client({ connectionString: env.databaseUrl });
  await db.connect();
  return db;
}

/** API_KEYS for the gateway: each key is its own id, stored as its SHA-256. */
export function apiKeys(keys: { id: string; organizationId: string; permissions: string[] }[]): string {
  return JSON.stringify(keys.map((k) => ({ ...k, sha256: createHash('sha256').update(k.id).digest('hex') })));
}

export interface Page {
  status: number;
  body: { data: Array<Record<string, unknown>>; nextCursor?: string | null; error?: { code: string; message: string; details?: { field: string; message: string }[] } };
}

export async function getJson(url: string, headers: Record<string, string> = DEV_KEY): Promise<Page> {
  const res = await fetch(url, { headers });
  return { status: res.status, body: (await res.json()) as Page['body'] };
}

export async function entryCount(db: Client, where = 'true', params: unknown[] = []): Promise<number> {
  const r = await db.query<{ n: string }>(`select count(*) as n from audit.entries where ${where}`, params);
  return Number(r.rows[0].n);
}
