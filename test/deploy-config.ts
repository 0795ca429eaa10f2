import { DatabaseConfig, configVariables, loadConfig } from '@herald/config';
import { GatewayConfig } from '../apps/api-gateway/src/config';
import { AuditWriterConfig } from '../apps/audit-writer/src/config';
import { DispatcherConfig } from '../apps/dispatcher/src/config';

/** Which config class reads the environment of each image (the migrate tool reads DatabaseConfig). */
export const CONFIG_OF = {
  'api-gateway': GatewayConfig,
  dispatcher: DispatcherConfig,
  'audit-writer': AuditWriterConfig,
  migrate: DatabaseConfig,
} as const;

export type ImageName = keyof typeof CONFIG_OF;
export const IMAGES = Object.keys(CONFIG_OF) as ImageName[];

/** Variables in `env` that the image's config class does not read (a typo there is silently ignored). */
export function unknownVariables(image: ImageName, env: Record<string, string>): string[] {
  const known = new Set(configVariables(CONFIG_OF[image]));
  return Object.keys(env).filter((k) => !known.has(k));
}

/** Loads the image's config from `env` as the process would at start-up; throws the ConfigError it would print. */
export function loadImageConfig(image: ImageName, env: Record<string, string>): object {
  // tools/migrate.ts names its own consumer (it has none); the services get theirs from the environment.
  return loadConfig(CONFIG_OF[image] as new () => object, image === 'migrate' ? { ...env, CONSUMER_NAME: 'migrate' } : env);
}
