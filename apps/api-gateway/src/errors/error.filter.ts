import { ArgumentsHost, Catch, ExceptionFilter, HttpException, HttpStatus, Logger } from '@nestjs/common';
import { ErrorBody, ErrorCode, HeraldError } from '@herald/contracts';
import type { NextFunction, Request, Response } from 'express';

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

/** Errors raised outside Herald's own code (Nest routing, body parsing) by their HTTP status. */
function fromHttpStatus(status: number, message: string): HeraldError {
  switch (status) {
    case HttpStatus.NOT_FOUND: return new HeraldError(ErrorCode.NotFound, 'No such route.');
    case HttpStatus.PAYLOAD_TOO_LARGE: return new HeraldError(ErrorCode.PayloadTooLarge, 'The request body is larger than 1 MiB.');
    case HttpStatus.BAD_REQUEST: return new HeraldError(ErrorCode.BadRequest, message);
    case HttpStatus.UNAUTHORIZED: return new HeraldError(ErrorCode.Unauthorized, message);
    case HttpStatus.FORBIDDEN: return new HeraldError(ErrorCode.Forbidden, message);
    case HttpStatus.TOO_MANY_REQUESTS: return new HeraldError(ErrorCode.RateLimited, 'Too many requests.');
    case HttpStatus.UNPROCESSABLE_ENTITY: return new HeraldError(ErrorCode.ValidationFailed, message);
    default: return new HeraldError(ErrorCode.InternalError, 'An internal error occurred.');
  }
}

const logger = new Logger('Errors');

export function toHeraldError(err: unknown, requestId?: string): HeraldError {
  if (err instanceof HeraldError) return err;
  if (err instanceof HttpException) return fromHttpStatus(err.getStatus(), err.message);
  const e = err as { type?: string; status?: number };
  if (e?.type === 'entity.too.large') return fromHttpStatus(413, '');
  if (e?.type === 'entity.parse.failed') return new HeraldError(ErrorCode.BadRequest, 'The request body is not valid JSON.');
  if (typeof e?.status === 'number' && e.status >= 400 && e.status < 500) return fromHttpStatus(e.status, 'The request is malformed.');
  // Named here: the gateway's logger has no per-request context (see plainHttpLogging).
  logger.error({ err: err instanceof Error ? err : String(err), requestId }, 'Unhandled error');
  return new HeraldError(ErrorCode.InternalError, 'An internal error occurred.');
}

export function sendError(res: Response, err: HeraldError): void {
  const body: { error: ErrorBody } = { error: err.toBody() };
  res.status(statusOf(err.code)).json(body);
}

@Catch()
export class ErrorFilter implements ExceptionFilter {
  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    sendError(http.getResponse<Response>(), toHeraldError(exception, String(http.getRequest<Request & { id?: unknown }>().id)));
  }
}

/** Express error handler for what fails before Nest's routing (the body parser). */
export function expressErrorHandler(err: unknown, req: Request & { id?: unknown }, res: Response, next: NextFunction): void {
  if (res.headersSent) return next(err);
  sendError(res, toHeraldError(err, String(req.id)));
}
