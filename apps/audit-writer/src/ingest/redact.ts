/** Keys whose values never reach the audit trail (compared without case, `_` and `-`). */
const SECRET_KEYS = new Set(
  ['password', 'passwd', 'secret', 'token', 'accessToken', 'refreshToken', 'idToken', 'apiKey', 'authorization', 'cardNumber', 'cvv', 'cvc', 'pin', 'privateKey', 'clientSecret', 'ssn', 'iban', 'accountNumber'].map(normalize),
);

function normalize(key: string): string {
  return key.toLowerCase().replace(/[_-]/g, '');
}

export function isSecretKey(key: string): boolean {
  const k = normalize(key);
  return SECRET_KEYS.has(k) || k.endsWith('password') || k.endsWith('secret') || k.endsWith('token') || k.endsWith('apikey');
}

export const REDACTED = '[REDACTED]';

/** A copy of `value` with every secret-like key, at any depth, replaced by "[REDACTED]". */
export function redact(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redact);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = isSecretKey(k) ? REDACTED : redact(v);
  return out;
}
