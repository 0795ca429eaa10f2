import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import { Type } from 'class-transformer';
import { ArrayNotEmpty, IsArray, IsString, Matches, ValidateNested } from 'class-validator';
import { DEFAULT_ORGANIZATION_ID, GRANT_PATTERN, ORGANIZATION_ID_PATTERN, toFieldErrors } from '@herald/contracts';
import { plainToInstance } from 'class-transformer';
import { validateSync } from 'class-validator';

export const DEV_STAFF_KEY = 'dev-staff-key';

export class ApiKeyEntry {
  @IsString() @Matches(/^[A-Za-z0-9_.:-]{1,100}$/, { message: 'id must be 1-100 letters, digits, _ . : -' }) id: string;
  @Matches(ORGANIZATION_ID_PATTERN, { message: 'organizationId must be 1-128 letters, digits, _ . -' }) organizationId: string;
  @Matches(/^[0-9a-f]{64}$/, { message: 'sha256 must be 64 lowercase hex characters' }) sha256: string;
  @IsArray() @ArrayNotEmpty() @Matches(GRANT_PATTERN, { each: true, message: 'each permission must be <resource>:<action>, <resource>:* or *:*' }) permissions: string[];
}

class ApiKeyFile {
  @IsArray() @ValidateNested({ each: true }) @Type(() => ApiKeyEntry) keys: ApiKeyEntry[];
}

export function sha256Hex(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('hex');
}

/** Parses and validates a keys document; throws with every problem, naming the entry. */
export function parseKeys(json: string, source: string): ApiKeyEntry[] {
  let plain: unknown;
  try {
    plain = JSON.parse(json);
  } catch {
    throw new Error(`${source}: not valid JSON`);
  }
  const doc = plainToInstance(ApiKeyFile, { keys: plain });
  const errors = validateSync(doc, { forbidUnknownValues: false });
  if (errors.length) throw new Error(`${source}: ${toFieldErrors(errors).map((e) => `${e.field}: ${e.message}`).join('; ')}`);
  const ids = new Set<string>();
  for (const k of doc.keys) {
    if (ids.has(k.id)) throw new Error(`${source}: key id '${k.id}' appears twice`);
    ids.add(k.id);
  }
  return doc.keys;
}

export interface Principal {
  keyId: string;
  organizationId: string;
  permissions: string[];
}

export const DEV_KEY_IN_PRODUCTION = 'a key equal to dev-staff-key must not be configured when NODE_ENV=production';

/**
 * The keys the gateway accepts: stored only as SHA-256, compared in constant time, reloaded when
 * the file changes (a bad new file is logged and the previous keys stay in force). With
 * `refuseDevKey` (production) a document holding a key equal to dev-staff-key is refused, at start
 * and at every reload alike.
 */
export class ApiKeyStore {
  private entries: { hash: Buffer; principal: Principal }[] = [];
  private watching?: string;

  constructor(
    private readonly devKeyEnabled: boolean,
    private readonly onReloadError: (err: Error) => void = () => undefined,
    private readonly refuseDevKey = false,
  ) {}

  load(entries: ApiKeyEntry[]): void {
    const dev = sha256Hex(DEV_STAFF_KEY);
    if (this.refuseDevKey && entries.some((e) => e.sha256 === dev)) throw new Error(DEV_KEY_IN_PRODUCTION);
    const list = entries.map((e) => ({ hash: Buffer.from(e.sha256, 'hex'), principal: { keyId: e.id, organizationId: e.organizationId, permissions: e.permissions } }));
    if (this.devKeyEnabled) {
      list.push({ hash: Buffer.from(sha256Hex(DEV_STAFF_KEY), 'hex'), principal: { keyId: 'dev-staff-key', organizationId: DEFAULT_ORGANIZATION_ID, permissions: ['*:*'] } });
    }
    this.entries = list;
  }

  /** Reads a file now and again whenever it changes (polling, which also sees Secret symlink swaps). */
  loadFile(path: string, intervalMs = 1000): void {
    this.load(parseKeys(readFileSync(path, 'utf8'), path));
    this.watching = path;
    watchFile(path, { interval: intervalMs, persistent: false }, () => {
      try {
        this.load(parseKeys(readFileSync(path, 'utf8'), path));
      } catch (err) {
        this.onReloadError(err as Error);
      }
    });
  }

  close(): void {
    if (this.watching) unwatchFile(this.watching);
  }

  authenticate(presented: string): Principal | null {
    const hash = createHash('sha256').update(presented, 'utf8').digest();
    let found: Principal | null = null;
    // Every entry is compared, so the time taken does not depend on which one matched.
    for (const e of this.entries) {
      if (timingSafeEqual(e.hash, hash) && !found) found = e.principal;
    }
    return found;
  }
}
