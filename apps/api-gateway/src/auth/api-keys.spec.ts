import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiKeyStore, DEV_KEY_IN_PRODUCTION, sha256Hex } from './api-keys';

const entry = (id: string, key: string) => ({ id, organizationId: 'acme', sha256: sha256Hex(key), permissions: ['*:*'] });

describe('ApiKeyStore and dev-staff-key in production', () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-api-keys-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('refuses a document holding a key equal to dev-staff-key when asked to (production)', () => {
    const store = new ApiKeyStore(false, undefined, true);
    expect(() => store.load([entry('smuggled', 'dev-staff-key')])).toThrow(DEV_KEY_IN_PRODUCTION);
    expect(store.authenticate('dev-staff-key')).toBeNull();
    // Outside production the same entry is just another key.
    const dev = new ApiKeyStore(false);
    dev.load([entry('smuggled', 'dev-staff-key')]);
    expect(dev.authenticate('dev-staff-key')).toMatchObject({ keyId: 'smuggled' });
  });

  it('a reloaded file that smuggles dev-staff-key in is refused like at start-up: reported, and the previous keys stay', async () => {
    const file = join(dir, 'keys.json');
    writeFileSync(file, JSON.stringify([entry('prod', 'hrld_prod')]));
    const errors: Error[] = [];
    const store = new ApiKeyStore(false, (err) => errors.push(err), true);
    store.loadFile(file, 20);
    try {
      expect(store.authenticate('hrld_prod')).toMatchObject({ keyId: 'prod' });
      // watchFile takes its first stat asynchronously: a change before it would be its baseline.
      await new Promise((r) => setTimeout(r, 200));
      writeFileSync(file, JSON.stringify([entry('prod', 'hrld_prod'), entry('sneaky', 'dev-staff-key')]));
      for (let i = 0; i < 500 && errors.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
      expect(errors.map((e) => e.message)).toContain(DEV_KEY_IN_PRODUCTION);
      expect(store.authenticate('dev-staff-key')).toBeNull();
      expect(store.authenticate('hrld_prod')).toMatchObject({ keyId: 'prod' });
    } finally {
      store.close();
    }
  });
});
