import { createCipheriv, randomBytes } from 'node:crypto';
import { SecretBox, previousSecretKeys } from './secret-box';

/** A secret as releases up to 0.1.0 stored it: `v1:`, AES-256-GCM without associated data. */
function sealV1(key: Buffer, plain: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const ct = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
  return `v1:${Buffer.concat([iv, cipher.getAuthTag(), ct]).toString('base64')}`;
}

describe('SecretBox key rotation', () => {
  const oldKey = randomBytes(32);
  const newKey = randomBytes(32);

  it('encrypts with the current key and still opens what an earlier key sealed, marked stale', () => {
    const stored = new SecretBox(oldKey).encrypt('whsec_rotate_me', 'wh_1');
    const rotated = new SecretBox(newKey, [oldKey]);
    expect(rotated.open(stored, 'wh_1')).toEqual({ plain: 'whsec_rotate_me', stale: true, earlierKey: true, legacy: false });
    const resealed = rotated.encrypt('whsec_rotate_me', 'wh_1');
    expect(rotated.open(resealed, 'wh_1')).toEqual({ plain: 'whsec_rotate_me', stale: false, earlierKey: false, legacy: false });
    expect(new SecretBox(newKey).decrypt(resealed, 'wh_1')).toBe('whsec_rotate_me');
  });

  it('refuses a secret no configured key opens, naming the variables to fix', () => {
    const stored = new SecretBox(oldKey).encrypt('whsec_lost', 'wh_1');
    expect(() => new SecretBox(newKey).decrypt(stored, 'wh_1')).toThrow('WEBHOOK_SECRET_KEYS');
    expect(() => new SecretBox(newKey, [randomBytes(32)]).decrypt(stored, 'wh_1')).toThrow('No configured key');
  });

  it('reads WEBHOOK_SECRET_KEYS as comma-separated base64 keys', () => {
    const a = randomBytes(32).toString('base64');
    const b = randomBytes(32).toString('base64');
    expect(previousSecretKeys(`${a}, ${b}`).map((k) => k.toString('base64'))).toEqual([a, b]);
    expect(previousSecretKeys(undefined)).toEqual([]);
    expect(() => new SecretBox(newKey, [Buffer.alloc(16)])).toThrow('32 bytes');
  });
});

describe('SecretBox binds each secret to its webhook id', () => {
  const key = randomBytes(32);
  const box = new SecretBox(key);

  it('a ciphertext copied into another webhook’s row does not open there', () => {
    const victims = box.encrypt('whsec_victim', 'wh_victim');
    expect(victims).toMatch(/^v2:/);
    expect(box.decrypt(victims, 'wh_victim')).toBe('whsec_victim');
    expect(() => box.decrypt(victims, 'wh_attacker')).toThrow('No configured key decrypts this secret for this webhook');
    // Nor under an earlier key.
    expect(() => new SecretBox(randomBytes(32), [key]).decrypt(victims, 'wh_attacker')).toThrow('No configured key');
  });

  it('still opens rows in the v1 format (no associated data), marked stale and legacy, until rotate re-encrypts them', () => {
    const v1 = sealV1(key, 'whsec_from_0_1');
    expect(box.open(v1, 'wh_old')).toEqual({ plain: 'whsec_from_0_1', stale: true, earlierKey: false, legacy: true });
    expect(new SecretBox(randomBytes(32), [key]).open(v1, 'wh_old')).toEqual({ plain: 'whsec_from_0_1', stale: true, earlierKey: true, legacy: true });
    const resealed = box.encrypt(box.decrypt(v1, 'wh_old'), 'wh_old');
    expect(box.open(resealed, 'wh_old')).toEqual({ plain: 'whsec_from_0_1', stale: false, earlierKey: false, legacy: false });
  });

  it('refuses a format it does not know', () => {
    expect(() => box.decrypt('v3:AAAA', 'wh_1')).toThrow('Unknown secret format');
  });
});
