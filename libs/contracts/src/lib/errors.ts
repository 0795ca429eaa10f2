/** Every error code of SPEC 2's table. A new code must be mapped by each transport's exhaustive switch. */
export enum ErrorCode {
  Unauthorized = 'UNAUTHORIZED',
  Forbidden = 'FORBIDDEN',
  ValidationFailed = 'VALIDATION_FAILED',
  BadRequest = 'BAD_REQUEST',
  NotFound = 'NOT_FOUND',
  PayloadTooLarge = 'PAYLOAD_TOO_LARGE',
  RateLimited = 'RATE_LIMITED',
  ServiceUnavailable = 'SERVICE_UNAVAILABLE',
  InternalError = 'INTERNAL_ERROR',
}

export interface FieldError {
  field: string;
  message: string;
}

export interface ErrorBody {
  code: ErrorCode;
  message: string;
  details?: FieldError[];
}

/** The error every module throws; transports turn its code into a status. */
export class HeraldError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: FieldError[],
  ) {
    super(message);
    this.name = 'HeraldError';
  }

  toBody(): ErrorBody {
    return this.details?.length ? { code: this.code, message: this.message, details: this.details } : { code: this.code, message: this.message };
  }

  static notFound(what: string): HeraldError {
    return new HeraldError(ErrorCode.NotFound, `${what} was not found.`);
  }

  static validation(details: FieldError[]): HeraldError {
    return new HeraldError(ErrorCode.ValidationFailed, 'The request is invalid.', details);
  }
}
