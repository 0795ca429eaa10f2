import { sha256Hex } from '../apps/api-gateway/src/auth/api-keys';

/** Keys of two organizations and a read-only one, as a deployment would configure them. */
export const KEYS = {
  acme: 'hrld_test_acme_manage_key',
  globex: 'hrld_test_globex_manage_key',
  auditor: 'hrld_test_acme_audit_only',
} as const;

export const API_KEYS_JSON = JSON.stringify([
  { id: 'acme-admin', organizationId: 'acme', sha256: sha256Hex(KEYS.acme), permissions: ['webhooks:manage', 'audit:read'] },
  { id: 'globex-admin', organizationId: 'globex', sha256: sha256Hex(KEYS.globex), permissions: ['webhooks:*'] },
  { id: 'acme-auditor', organizationId: 'acme', sha256: sha256Hex(KEYS.auditor), permissions: ['audit:read'] },
]);

export interface ErrorReply {
  error: { code: string; message: string; details?: { field: string; message: string }[] };
}

/** Asserts SPEC 2's one error shape and returns it. */
export async function errorOf(res: Response, status: number, code: string): Promise<ErrorReply['error']> {
  const text = await res.text();
  expect({ status: res.status, text }).toEqual({ status, text: expect.any(String) });
  const body = JSON.parse(text) as ErrorReply;
  expect(Object.keys(body)).toEqual(['error']);
  expect(body.error.code).toBe(code);
  expect(typeof body.error.message).toBe('string');
  for (const k of Object.keys(body.error)) expect(['code', 'message', 'details']).toContain(k);
  return body.error;
}

export function json(key: string, body?: unknown, method = 'POST'): RequestInit {
  return { method, headers: { 'x-api-key': key, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) };
}
