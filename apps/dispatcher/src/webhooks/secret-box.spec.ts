import { randomBytes } from 'node:crypto';
import { SecretBox, previousSecretKeys } from './secret-box';

describe('SecretBox key rotation', () => {
  const oldKey = randomBytes(32);
  const newKey = randomBytes(32);

  it('encrypts with the current key and still opens what an earlier key sealed, marked stale', () => {
    const stored = new SecretBox(oldKey).encrypt('whsec_rotate_me');
    const rotated = new SecretBox(newKey, [oldKey]);
    expect(rotated.open(stored)).toEqual({ plain: 'whsec_rotate_me', stale: true });
    const resealed = rotated.encrypt('whsec_rotate_me');
    expect(rotated.open(resealed)).toEqual({ plain: 'whsec_rotate_me', stale: false });
    expect(new SecretBox(newKey).decrypt(resealed)).toBe('whsec_rotate_me');
  });

  it('refuses a secret no configured key opens, naming the variables to fix', () => {
    const stored = new SecretBox(oldKey).encrypt('whsec_lost');
    expect(() => new SecretBox(newKey).decrypt(stored)).toThrow('WEBHOOK_SECRET_KEYS');
    expect(() => new SecretBox(newKey, [randomBytes(32)]).decrypt(stored)).toThrow('No configured key');
  });

  it('reads WEBHOOK_SECRET_KEYS as comma-separated base64 keys', () => {
    const a = randomBytes(32).toString('base64');
    const b = randomBytes(32).toString('base64');
    expect(previousSecretKeys(`${a}, ${b}`).map((k) => k.toString('base64'))).toEqual([a, b]);
    expect(previousSecretKeys(undefined)).toEqual([]);
    expect(() => new SecretBox(newKey, [Buffer.alloc(16)])).toThrow('32 bytes');
  });
});
