import { plainToInstance } from 'class-transformer';
import { getMetadataStorage, validateSync } from 'class-validator';
import { toFieldErrors } from '@herald/contracts';

export class ConfigError extends Error {
  constructor(readonly problems: { variable: string; message: string }[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  ${p.variable}: ${p.message}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

type ConfigClass<T> = new () => T;

/**
 * Reads the environment into one validated, typed config object. Property names are the variable
 * names, so an error names exactly the variable to fix. Empty strings count as unset.
 */
export function loadConfig<T extends object>(cls: ConfigClass<T>, env: Record<string, string | undefined> = process.env): T {
  const plain: Record<string, unknown> = {};
  for (const key of configVariables(cls)) {
    const value = env[key];
    if (value !== undefined && value !== '') plain[key] = value;
  }
  // Defaults live in the class's field initialisers; `exposeDefaultValues` keeps them for unset variables.
  const instance = plainToInstance(cls, plain, { exposeDefaultValues: true });
  const errors = validateSync(instance, { forbidUnknownValues: false, validationError: { target: false, value: false } });
  if (errors.length) {
    throw new ConfigError(toFieldErrors(errors).map((e) => ({ variable: e.field, message: e.message })));
  }
  const validated = instance as T & { validateCombination?: () => { variable: string; message: string }[] };
  const extra = validated.validateCombination?.() ?? [];
  if (extra.length) throw new ConfigError(extra);
  return instance;
}

/**
 * Every variable a config class reads: the fields with a default and the optional ones (`API_KEYS?`),
 * which exist on an instance only when assigned, so they are found through their validators.
 * Also what the deployment tests check compose and Kubernetes settings against.
 */
export function configVariables(cls: ConfigClass<object>): string[] {
  const names = new Set(Object.keys(new cls()));
  for (const m of getMetadataStorage().getTargetValidationMetadatas(cls, '', true, false)) names.add(m.propertyName);
  return [...names];
}

/** `true`/`false` (and 1/0, yes/no) from a variable; anything else stays a string and fails `@IsBoolean`. */
export function toBoolean({ value }: { value: unknown }): unknown {
  if (typeof value !== 'string') return value;
  const v = value.trim().toLowerCase();
  if (['true', '1', 'yes'].includes(v)) return true;
  if (['false', '0', 'no'].includes(v)) return false;
  return value;
}

/** A number from a variable; anything unparseable stays a string and fails `@IsInt`/`@IsNumber`. */
export function toNumber({ value }: { value: unknown }): unknown {
  if (typeof value !== 'string') return value;
  const n = Number(value.trim());
  return value.trim() === '' || Number.isNaN(n) ? value : n;
}
