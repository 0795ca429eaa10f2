import { applyDecorators, Type } from '@nestjs/common';
import { ApiExtraModels, ApiResponse, getSchemaPath } from '@nestjs/swagger';
import { ErrorCode, ErrorResponseView } from '@herald/contracts';
import { statusOf } from '../errors/error.filter';

/** A success response `{"data": T}` (or `{"data": T[]}`, with `nextCursor` when it pages). */
export function ApiData(type: Type<unknown>, options: { status?: number; list?: boolean; paged?: boolean; description?: string } = {}) {
  const item = { $ref: getSchemaPath(type) };
  return applyDecorators(
    ApiExtraModels(type),
    ApiResponse({
      status: options.status ?? 200,
      description: options.description ?? 'OK',
      schema: {
        type: 'object',
        required: ['data'],
        properties: {
          data: options.list ? { type: 'array', items: item } : item,
          ...(options.paged ? { nextCursor: { type: 'string', nullable: true } } : {}),
        },
      },
    }),
  );
}

/** The error rows of SPEC 2's table a route can answer with, each in the one error shape. */
export function ApiErrors(...codes: ErrorCode[]) {
  return applyDecorators(...codes.map((code) => ApiResponse({ status: statusOf(code), description: code, type: ErrorResponseView })));
}

/** What any authenticated route may answer. */
export const COMMON_ERRORS = [ErrorCode.Unauthorized, ErrorCode.Forbidden, ErrorCode.RateLimited, ErrorCode.ServiceUnavailable, ErrorCode.InternalError];
