import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const VERSION = 'v1';

/**
 * AES-256-GCM for webhook secrets at rest: `v1:` + base64(iv ‖ tag ‖ ciphertext), always encrypted
 * with the current key. Earlier keys (WEBHOOK_SECRET_KEYS) still decrypt, so the key can be rotated
 * without downtime: GCM's tag tells which key fits, so the stored format needs no key id.
 */
export class SecretBox {
  private readonly previous: Buffer[];

  constructor(
    private readonly key: Buffer,
    previous: Buffer[] = [],
  ) {
    for (const k of [key, ...previous]) if (k.length !== 32) throw new Error('The secret key must be 32 bytes');
    this.previous = previous;
  }

  encrypt(plain: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    const ct = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return `${VERSION}:${Buffer.concat([iv, cipher.getAuthTag(), ct]).toString('base64')}`;
  }

  decrypt(stored: string): string {
    return this.open(stored).plain;
  }

  /** The plain text, and whether it was sealed with an earlier key (then it should be re-encrypted). */
  open(stored: string): { plain: string; stale: boolean } {
    const [version, payload] = stored.split(':', 2);
    if (version !== VERSION || !payload) throw new Error('Unknown secret format');
    const buf = Buffer.from(payload, 'base64');
    const keys = [this.key, ...this.previous];
    for (let i = 0; i < keys.length; i++) {
      try {
        const decipher = createDecipheriv('aes-256-gcm', keys[i], buf.subarray(0, 12));
        decipher.setAuthTag(buf.subarray(12, 28));
        return { plain: Buffer.concat([decipher.update(buf.subarray(28)), decipher.final()]).toString('utf8'), stale: i > 0 };
      } catch {
        // Not this key (GCM authentication failed): try the next one.
      }
    }
    throw new Error('No configured key decrypts this secret (WEBHOOK_SECRET_KEY / WEBHOOK_SECRET_KEYS)');
  }
}

/**
 * The configured key, or in development one generated once and kept under the data directory so
 * secrets stay readable across restarts. Production refuses to start without a key (config).
 */
export function loadSecretKey(configured: string | undefined, dataDir: string): Buffer {
  if (configured) return Buffer.from(configured, 'base64');
  const file = join(dataDir, 'webhook-secret.key');
  if (existsSync(file)) return Buffer.from(readFileSync(file, 'utf8').trim(), 'base64');
  mkdirSync(dataDir, { recursive: true });
  const key = randomBytes(32);
  writeFileSync(file, key.toString('base64'), { mode: 0o600, flag: 'wx' });
  return key;
}

/** Earlier keys from WEBHOOK_SECRET_KEYS (comma-separated base64), for decryption only. */
export function previousSecretKeys(configured: string | undefined): Buffer[] {
  return (configured ?? '')
    .split(',')
    .map((k) => k.trim())
    .filter(Boolean)
    .map((k) => Buffer.from(k, 'base64'));
}
