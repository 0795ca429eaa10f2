import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { ApiKeyEntry, parseKeys, sha256Hex } from '../apps/api-gateway/src/auth/api-keys';

const USAGE = `Usage:
  npm run keys -- create --id <id> [--org <organizationId>] --permissions <p1,p2>
      Prints a new key (shown once: give it to the caller) and the entry to add to API_KEYS / API_KEYS_FILE.
  npm run keys -- hash [--id <id>] [--org <organizationId>] [--permissions <p1,p2>] <key>
      Prints the SHA-256 of an existing key, or its whole entry when --id and --permissions are given.
`;

/** A new key: `hrld_` + 32 random bytes, base64url (256 bits; nothing to guess). */
export function newKey(): string {
  return `hrld_${randomBytes(32).toString('base64url')}`;
}

/** Builds an entry and validates it with the same rules the gateway applies when it loads keys. */
export function entryFor(key: string, id: string, organizationId: string, permissions: string[]): ApiKeyEntry {
  const entry = { id, organizationId, sha256: sha256Hex(key), permissions };
  return parseKeys(JSON.stringify([entry]), 'the new entry')[0];
}

function main(argv: string[]): number {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      id: { type: 'string' },
      org: { type: 'string', default: 'default' },
      permissions: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [command, ...rest] = positionals;
  const permissions = (values.permissions ?? '').split(',').map((p) => p.trim()).filter(Boolean);
  if (values.help || !command) {
    process.stdout.write(USAGE);
    return values.help ? 0 : 2;
  }
  if (command === 'create') {
    if (!values.id || !permissions.length) throw new Error('create needs --id and --permissions');
    const key = newKey();
    const entry = entryFor(key, values.id, values.org!, permissions);
    process.stdout.write(`key:   ${key}\nentry: ${JSON.stringify(entry)}\n\nThe key is not stored anywhere: give it to the caller now. Add the entry to API_KEYS_FILE (reloaded within a second) or API_KEYS.\n`);
    return 0;
  }
  if (command === 'hash') {
    const key = rest[0];
    if (!key) throw new Error('hash needs the key as its argument');
    if (values.id && permissions.length) process.stdout.write(`${JSON.stringify(entryFor(key, values.id, values.org!, permissions))}\n`);
    else process.stdout.write(`${sha256Hex(key)}\n`);
    return 0;
  }
  throw new Error(`unknown command '${command}'`);
}

if (require.main === module) {
  try {
    process.exitCode = main(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`keys: ${(err as Error).message}\n\n${USAGE}`);
    process.exitCode = 1;
  }
}
