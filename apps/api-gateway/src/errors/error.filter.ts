import { ArgumentsHost, Catch, ExceptionFilter, HttpException, HttpStatus, Logger } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { ErrorBody, ErrorCode, HeraldError } from '@herald/contracts';
import type { FastifyRequest } from 'fastify';

/** SPEC 2's table: every code has one status. Exhaustive, so a new code must be mapped here. */
export function statusOf(code: ErrorCode): number {
  switch (code) {
    case ErrorCode.Unauthorized: return 401;
    case ErrorCode.Forbidden: return 403;
    case ErrorCode.ValidationFailed: return 422;
    case ErrorCode.BadRequest: return 400;
    case ErrorCode.NotFound: return 404;
    case ErrorCode.PayloadTooLarge: return 413;
    case ErrorCode.RateLimited: return 429;
    case ErrorCode.ServiceUnavailable: return 503;
    case ErrorCode.InternalError: return 500;
    default: {
      const unmapped: never = code;
      throw new Error(`Unmapped error code ${String(unmapped)}`);
    }
  }
}

/** Errors raised outside Herald's own code (Nest routing, Fastify's body limit) by their HTTP status. */
function fromHttpStatus(status: number, message: string): HeraldError {
  switch (status) {
    case HttpStatus.NOT_FOUND: return new HeraldError(ErrorCode.NotFound, 'No such route.');
    case HttpStatus.PAYLOAD_TOO_LARGE: return new HeraldError(ErrorCode.PayloadTooLarge, 'The request body is larger than 1 MiB.');
    case HttpStatus.BAD_REQUEST: return new HeraldError(ErrorCode.BadRequest, message);
    case HttpStatus.UNAUTHORIZED: return new HeraldError(ErrorCode.Unauthorized, message);
    case HttpStatus.FORBIDDEN: return new HeraldError(ErrorCode.Forbidden, message);
    case HttpStatus.TOO_MANY_REQUESTS: return new HeraldError(ErrorCode.RateLimited, 'Too many requests.');
    case HttpStatus.UNPROCESSABLE_ENTITY: return new HeraldError(ErrorCode.ValidationFailed, message);
    // Fastify refuses a content-type header that is not a media type (`;;;`, `text`) before any parser runs.
    case HttpStatus.UNSUPPORTED_MEDIA_TYPE: return new HeraldError(ErrorCode.BadRequest, 'The content-type header is not a valid media type.');
    // SPEC 2's table has no row for the other client errors (405, 411, 414, …): the request is at fault, not Herald.
    default: return status >= 400 && status < 500 ? new HeraldError(ErrorCode.BadRequest, 'The request is malformed.') : new HeraldError(ErrorCode.InternalError, 'An internal error occurred.');
  }
}

const logger = new Logger('Errors');

export function toHeraldError(err: unknown, requestId?: string): HeraldError {
  if (err instanceof HeraldError) return err;
  if (err instanceof HttpException) return fromHttpStatus(err.getStatus(), err.message);
  // Fastify's own errors (FST_ERR_…) carry their status; Nest maps those under 500 to an
  // HttpException before the filter sees them, this catches what it does not.
  const e = err as { statusCode?: number };
  if (typeof e?.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) return fromHttpStatus(e.statusCode, 'The request is malformed.');
  // Named here: the gateway's logger has no per-request context (see fastifyRequestLogging).
  logger.error({ err: err instanceof Error ? err : String(err), requestId }, 'Unhandled error');
  return new HeraldError(ErrorCode.InternalError, 'An internal error occurred.');
}

/** Every error response: SPEC 2's status and body, on any reply Nest hands a filter. */
@Catch()
export class ErrorFilter implements ExceptionFilter {
  constructor(private readonly adapterHost: HttpAdapterHost) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const err = toHeraldError(exception, String(http.getRequest<FastifyRequest>().id));
    const body: { error: ErrorBody } = { error: err.toBody() };
    this.adapterHost.httpAdapter.reply(http.getResponse(), body, statusOf(err.code));
  }
}
