import { plainToInstance } from 'class-transformer';
import { ValidationError, validateSync } from 'class-validator';
import { FieldError, HeraldError } from './errors';

export type ClassType<T> = new (...args: never[]) => T;

/**
 * What happens to properties the class does not declare: by default they are dropped from the
 * instance; `forbidUnknown` refuses them (request bodies); `keepUnknown` leaves them where they are,
 * for a caller that reads only the declared ones (the envelope). Not both.
 */
export type ValidateOptions = { forbidUnknown?: boolean; keepUnknown?: never } | { forbidUnknown?: never; keepUnknown?: boolean };

export function isJsonObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** A payload must be a JSON object before any of its fields is checked. */
export function assertJsonObject(value: unknown): asserts value is Record<string, unknown> {
  if (!isJsonObject(value)) throw HeraldError.validation([{ field: '', message: 'must be a JSON object' }]);
}

/** Flattens class-validator's tree into `{field, message}` pairs with dotted paths. */
export function toFieldErrors(errors: ValidationError[], parent = ''): FieldError[] {
  const out: FieldError[] = [];
  for (const e of errors) {
    const field = parent ? `${parent}.${e.property}` : e.property;
    for (const message of Object.values(e.constraints ?? {})) out.push({ field, message });
    if (e.children?.length) out.push(...toFieldErrors(e.children, field));
  }
  return out;
}

/** Turns a plain value into a validated instance of `cls`, or throws VALIDATION_FAILED with every field error. */
export function validateAs<T extends object>(cls: ClassType<T>, plain: unknown, options: ValidateOptions = {}): T {
  assertJsonObject(plain);
  return validateInstance(plainToInstance(cls as new () => T, plain), options);
}

/** Validates an instance already built, or throws VALIDATION_FAILED with every field error. */
export function validateInstance<T extends object>(instance: T, options: ValidateOptions = {}): T {
  const errors = validateSync(instance, {
    whitelist: !options.keepUnknown,
    forbidNonWhitelisted: options.forbidUnknown === true,
    forbidUnknownValues: false,
    validationError: { target: false, value: false },
  });
  if (errors.length) throw HeraldError.validation(toFieldErrors(errors));
  return instance;
}
