import { constants, accessSync, statSync } from 'node:fs';
import { ValidateBy, ValidationOptions } from 'class-validator';

/** A path to a regular file this process can read: a typo in a mounted Secret's path stops the start, naming the variable. */
export function IsReadableFile(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isReadableFile',
      validator: {
        validate: (value: unknown) => {
          if (typeof value !== 'string') return false;
          try {
            accessSync(value, constants.R_OK);
            return statSync(value).isFile();
          } catch {
            return false;
          }
        },
        defaultMessage: (args) => `must be a readable file; ${JSON.stringify(args?.value)} is not`,
      },
    },
    options,
  );
}

interface NatsConnectionSettings {
  NATS_USER?: string;
  NATS_PASSWORD?: string;
  NATS_TOKEN?: string;
  NATS_CREDS_FILE?: string;
  NATS_TLS_CERT_FILE?: string;
  NATS_TLS_KEY_FILE?: string;
}

/** NATS settings that are valid alone but not together. */
export function natsConnectionProblems(c: NatsConnectionSettings): { variable: string; message: string }[] {
  const problems: { variable: string; message: string }[] = [];
  if (c.NATS_USER && !c.NATS_PASSWORD) problems.push({ variable: 'NATS_PASSWORD', message: 'is required with NATS_USER' });
  if (c.NATS_PASSWORD && !c.NATS_USER) problems.push({ variable: 'NATS_USER', message: 'is required with NATS_PASSWORD' });
  const ways = [c.NATS_USER && 'NATS_USER', c.NATS_TOKEN && 'NATS_TOKEN', c.NATS_CREDS_FILE && 'NATS_CREDS_FILE'].filter((w): w is string => Boolean(w));
  if (ways.length > 1) {
    problems.push({ variable: ways[1], message: `set one way to authenticate (NATS_USER/NATS_PASSWORD, NATS_TOKEN or NATS_CREDS_FILE), not ${ways.join(' and ')}` });
  }
  if (c.NATS_TLS_CERT_FILE && !c.NATS_TLS_KEY_FILE) problems.push({ variable: 'NATS_TLS_KEY_FILE', message: 'is required with NATS_TLS_CERT_FILE (the client certificate needs its key)' });
  if (c.NATS_TLS_KEY_FILE && !c.NATS_TLS_CERT_FILE) problems.push({ variable: 'NATS_TLS_CERT_FILE', message: 'is required with NATS_TLS_KEY_FILE' });
  return problems;
}
