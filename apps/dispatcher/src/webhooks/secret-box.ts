import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** v1 (until 0.1.0): no associated data. v2: bound to the webhook id (see SecretBox). */
const LEGACY = 'v1';
const VERSION = 'v2';

/** What a stored secret is bound to: its row. */
function associatedData(webhookId: string): Buffer {
  return Buffer.from(`herald:webhook-secret:${VERSION}:${webhookId}`, 'utf8');
}

/** A secret opened, and whether it should be re-encrypted (`webhook-secrets rotate`), and why. */
export interface OpenedSecret {
  plain: string;
  /** Sealed with an earlier key or in the legacy format: rotate re-encrypts it. */
  stale: boolean;
  /** Sealed with one of WEBHOOK_SECRET_KEYS, not the current key. */
  earlierKey: boolean;
  /** The v1 format, not bound to its webhook. */
  legacy: boolean;
}

/**
 * AES-256-GCM for webhook secrets at rest: `v2:` + base64(iv ‖ tag ‖ ciphertext), always encrypted
 * with the current key. The webhook id is the associated data, so a ciphertext copied into another
 * webhook's row (someone with write access to the table pointing their own webhook at a victim's
 * secret) fails authentication instead of signing with the victim's secret. Earlier keys
 * (WEBHOOK_SECRET_KEYS) still decrypt, so the key can be rotated without downtime: GCM's tag tells
 * which key fits, so the stored format needs no key id. `v1:` rows (no associated data) still open,
 * marked stale, until `webhook-secrets rotate` re-encrypts them.
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

  encrypt(plain: string, webhookId: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(associatedData(webhookId));
    const ct = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return `${VERSION}:${Buffer.concat([iv, cipher.getAuthTag(), ct]).toString('base64')}`;
  }

  decrypt(stored: string, webhookId: string): string {
    return this.open(stored, webhookId).plain;
  }

  open(stored: string, webhookId: string): OpenedSecret {
    const [version, payload] = stored.split(':', 2);
    if ((version !== VERSION && version !== LEGACY) || !payload) throw new Error('Unknown secret format');
    const legacy = version === LEGACY;
    const buf = Buffer.from(payload, 'base64');
    const keys = [this.key, ...this.previous];
    for (let i = 0; i < keys.length; i++) {
      try {
        const decipher = createDecipheriv('aes-256-gcm', keys[i], buf.subarray(0, 12));
        if (!legacy) decipher.setAAD(associatedData(webhookId));
        decipher.setAuthTag(buf.subarray(12, 28));
        const plain = Buffer.concat([decipher.update(buf.subarray(28)), decipher.final()]).toString('utf8');
        return { plain, stale: i > 0 || legacy, earlierKey: i > 0, legacy };
      } catch {
        // Not this key, or not this webhook's secret (GCM authentication failed): try the next key.
      }
    }
    throw new Error('No configured key decrypts this secret for this webhook (WEBHOOK_SECRET_KEY / WEBHOOK_SECRET_KEYS)');
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
