import { CanActivate, ExecutionContext, Injectable, SetMetadata, createParamDecorator } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { ErrorCode, HeraldError, Permission, RpcContext, grants } from '@herald/contracts';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiKeyStore, Principal } from './api-keys';
import { RateLimiter } from './rate-limit';

const PERMISSION_KEY = 'herald:permission';

/** Marks a controller or route as needing a key with this permission. */
export const RequirePermission = (permission: Permission) => SetMetadata(PERMISSION_KEY, permission);

/** `principal` is declared on every request (`decorateRequest` in gateway.ts), null until the guard sets it. */
type AuthedRequest = FastifyRequest & { principal?: Principal | null };

function presentedKey(req: FastifyRequest): string | undefined {
  const header = req.headers['x-api-key'];
  if (typeof header === 'string' && header) return header;
  // The scheme is case-insensitive (RFC 9110 11.1).
  const bearer = /^bearer +(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  return bearer?.[1];
}

/**
 * 401 for no or an unknown key, 429 for a key over its rate limit, 403 for a key without the
 * route's permission. The limit counts every authenticated request, also the refused ones.
 */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly keys: ApiKeyStore,
    private readonly limiter: RateLimiter,
  ) {}

  canActivate(context: ExecutionContext): boolean {
    const permission = this.reflector.getAllAndOverride<Permission | undefined>(PERMISSION_KEY, [context.getHandler(), context.getClass()]);
    if (!permission) return true;
    const req = context.switchToHttp().getRequest<AuthedRequest>();
    const key = presentedKey(req);
    const principal = key ? this.keys.authenticate(key) : null;
    if (!principal) throw new HeraldError(ErrorCode.Unauthorized, 'A valid API key is required (x-api-key or Authorization: Bearer).');
    if (this.limiter.enabled) {
      const rate = this.limiter.take(principal.keyId);
      const res = context.switchToHttp().getResponse<FastifyReply>();
      res.header('x-ratelimit-limit', rate.limit);
      res.header('x-ratelimit-remaining', rate.remaining);
      res.header('x-ratelimit-reset', rate.resetSeconds);
      if (!rate.allowed) {
        res.header('retry-after', rate.resetSeconds);
        throw new HeraldError(ErrorCode.RateLimited, `Rate limit of ${rate.limit} requests per window exceeded; retry in ${rate.resetSeconds} s.`);
      }
    }
    if (!grants(principal.permissions, permission)) throw new HeraldError(ErrorCode.Forbidden, `Permission '${permission}' is required.`);
    req.principal = principal;
    return true;
  }
}

/** The RPC context of the authenticated request: organization, actor and request id. */
export const Caller = createParamDecorator((_: unknown, context: ExecutionContext): RpcContext => {
  const req = context.switchToHttp().getRequest<AuthedRequest>();
  const p = req.principal!;
  return { organizationId: p.organizationId, actorId: p.keyId, requestId: req.id };
});
