import 'reflect-metadata';
import { loadConfig } from '@herald/config';
import { Client } from 'pg';
import { DispatcherConfig } from '../apps/dispatcher/src/config';
import { OpenedSecret, SecretBox, loadSecretKey, previousSecretKeys } from '../apps/dispatcher/src/webhooks/secret-box';

const USAGE = `Usage (with the dispatcher's DATABASE_URL, WEBHOOK_SECRET_KEY and WEBHOOK_SECRET_KEYS):
  npm run webhook-secrets -- check     How many stored webhook secrets the current key, an earlier key, or no key decrypts,
                                       and how many are in the v1 format (not bound to their webhook id).
                                       Exits 1 when some cannot be decrypted with the configured keys.
  npm run webhook-secrets -- rotate    Re-encrypts every secret stored under an earlier key or in the v1 format with
                                       WEBHOOK_SECRET_KEY, bound to its webhook id (v2).
                                       Afterwards WEBHOOK_SECRET_KEYS can be emptied (run check first).
`;

interface Row {
  id: string;
  secret_ciphertext: string;
}

/** Sorts the stored secrets by the key that opens them; re-encrypts the stale ones when `rotate`. */
export async function run(command: 'check' | 'rotate', config: DispatcherConfig): Promise<{ current: number; stale: number; legacy: number; unreadable: string[]; rotated: number }> {
  const box = new SecretBox(loadSecretKey(config.WEBHOOK_SECRET_KEY, config.DATA_DIR), previousSecretKeys(config.WEBHOOK_SECRET_KEYS));
  const db = new Client({ connectionString: config.DATABASE_URL, application_name: 'herald-webhook-secrets' });
  await db.connect();
  const result = { current: 0, stale: 0, legacy: 0, unreadable: [] as string[], rotated: 0 };
  try {
    await db.query('begin');
    // Locked so a concurrent update of a webhook cannot be overwritten with its old secret.
    const { rows } = await db.query<Row>(`select id, secret_ciphertext from dispatch.webhooks order by id ${command === 'rotate' ? 'for update' : ''}`);
    for (const row of rows) {
      let opened: OpenedSecret;
      try {
        opened = box.open(row.secret_ciphertext, row.id);
      } catch {
        result.unreadable.push(row.id);
        continue;
      }
      if (!opened.stale) {
        result.current++;
        continue;
      }
      if (opened.earlierKey) result.stale++;
      else result.current++;
      if (opened.legacy) result.legacy++;
      if (command === 'rotate') {
        await db.query('update dispatch.webhooks set secret_ciphertext = $2 where id = $1', [row.id, box.encrypt(opened.plain, row.id)]);
        result.rotated++;
      }
    }
    await db.query('commit');
  } catch (err) {
    await db.query('rollback').catch(() => undefined);
    throw err;
  } finally {
    await db.end();
  }
  return result;
}

async function main(argv: string[]): Promise<number> {
  const command = argv[0];
  if (command !== 'check' && command !== 'rotate') {
    process.stdout.write(USAGE);
    return argv.includes('--help') || argv.includes('-h') ? 0 : 2;
  }
  const r = await run(command, loadConfig(DispatcherConfig));
  process.stdout.write(
    `webhook secrets: ${r.current} under the current key, ${r.stale} under an earlier key${command === 'rotate' ? ` (${r.rotated} re-encrypted)` : ''}, ${r.unreadable.length} unreadable; ${r.legacy} in the v1 format, not bound to their webhook${r.legacy && command === 'check' ? ' (rotate re-encrypts them)' : ''}\n`,
  );
  if (r.unreadable.length) {
    process.stderr.write(`no configured key decrypts the secrets of: ${r.unreadable.join(', ')}; add the key they were stored under to WEBHOOK_SECRET_KEYS\n`);
    return 1;
  }
  return 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      // A ConfigError's message names the variable to fix.
      process.stderr.write(`webhook-secrets: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
