export const Permission = {
  WebhooksManage: 'webhooks:manage',
  AuditRead: 'audit:read',
} as const;
export type Permission = (typeof Permission)[keyof typeof Permission];

/** A granted permission is exact (`audit:read`), a resource wildcard (`audit:*`) or `*:*`. */
export const GRANT_PATTERN = /^(\*|[a-z][a-z0-9-]*):(\*|[a-z][a-z0-9-]*)$/;

export function grants(granted: readonly string[], required: Permission): boolean {
  const [resource] = required.split(':');
  return granted.some((g) => g === required || g === '*:*' || g === `${resource}:*`);
}
