import fc from 'fast-check';
import { DELIVERABLE_EVENT_TYPES, DELIVERABLE_MODULES } from '@herald/contracts';

/**
 * Value generators for fuzzing Herald's inputs. Transport-free: they make strings and JSON *text*
 * (not objects, so that `__proto__` keys, duplicate keys, numbers JavaScript cannot hold and lone
 * surrogates reach the parser exactly as written). The REST fuzz (`http-requests.ts`) builds
 * requests from them; a bus fuzz can build event envelopes from the same pieces (`jsonText`,
 * `fromSchema` with a schema of the envelope, `hostileString`, `dateEdge`).
 */

/** A UTF-16 code unit that is half a surrogate pair: not encodable as UTF-8. */
export const loneSurrogate = fc.constantFrom('\uD800', '\uDBFF', '\uDC00', '\uDFFF');

/** Percent-escapes a string byte by byte; lone surrogates become their 3-byte (WTF-8) form. */
export function percentEncode(s: string): string {
  let out = '';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (/^[A-Za-z0-9\-._~]$/.test(ch)) out += ch;
    else if (cp >= 0xd800 && cp <= 0xdfff) out += [0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f)].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join('');
    else out += encodeURIComponent(ch);
  }
  return out;
}

/** Percent sequences that do not decode: truncated, not hex, invalid UTF-8, surrogates as bytes. */
export const badPercent = fc.constantFrom('%', '%%', '%2', '%G0', '%zz', '%E0%A4%A', '%C0%AF', '%C3%28', '%FF', '%FE%FF', '%ED%A0%80', '%ED%BF%BF', '%F4%90%80%80', '%80', '%E2%82', '%00');

/** Dates at every edge: of JavaScript, of Postgres, of the calendar, of ISO 8601's many forms. */
export const dateEdge = fc.constantFrom(
  '1970-01-01T00:00:00.000Z', '1969-12-31T23:59:59.999Z', '0000-01-01T00:00:00Z', '0001-01-01', '-000001-01-01T00:00:00Z',
  '9999-12-31T23:59:59.999Z', '+275760-09-13T00:00:00.000Z', '+275760-09-13T00:00:00.001Z', '-271821-04-20T00:00:00.000Z',
  '+294276-12-31T23:59:59Z', '-004713-11-24T00:00:00Z', '2024-02-29', '2023-02-29', '2026-13-01', '2026-00-10', '2026-01-32',
  '2026-03-15T24:00:00Z', '2016-12-31T23:59:60Z', '2026-03-29T02:30:00+01:00', '2026-03-15T10:30:00+14:00', '2026-03-15T10:30:00-12:00',
  '2026-03-15T10:30:00+99:99', '2026-03-15T10:30:00.123456789Z', '2026', '2026-03', '2026-W11-1', '2026-074', '20260315T103000Z',
  'P1D', '2026-03-15 10:30:00', '2026-03-15T10:30', 'T10:30:00', '1e10', '0', '-1', 'now', 'Infinity', '',
);

/** Number texts JSON allows but JavaScript or Postgres cannot hold as given. */
export const hugeNumberText = fc.constantFrom(
  '1e308', '1e309', '-1e309', '1e-400', '-0', '0.0000000000000000000001', '9007199254740993', '-9007199254740993',
  '123456789012345678901234567890', '2147483648', '-2147483649', '4294967296', '1.7976931348623157e308', '5e-324', '100.0', '1E2',
);

const longString = fc.constantFrom(1_000, 2_049, 10_000, 100_000).chain((n) => fc.constantFrom('x', 'é', '😀', '\u0000', '%').map((c) => c.repeat(n)));

/** Strings that break parsers, validators and databases. */
export function hostileString(): fc.Arbitrary<string> {
  return fc.oneof(
    fc.string(),
    fc.string({ unit: 'binary', maxLength: 40 }),
    fc.tuple(fc.string({ maxLength: 8 }), loneSurrogate, fc.string({ maxLength: 8 })).map(([a, s, b]) => a + s + b),
    fc.constantFrom('', ' ', '__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'null', 'undefined', 'NaN', 'true', '[]', '{}',
      '\u0000', 'a\u0000b', '\r\n', '\u2028', '\u202E', '\uFEFF', '../../etc/passwd', '%2e%2e%2f', "' OR 1=1 --", '"; drop table x; --',
      '${jndi:ldap://x}', '{{7*7}}', '<script>', '*', '.*', 'orders.*', 'webhooks.*', 'wh_', 'wh_01HQZX3V8Y5T7K9M2N4P6R8S0A', 'ZZZZ'),
    dateEdge,
    hugeNumberText,
    longString,
  );
}

/** A JSON string literal (JSON.stringify escapes lone surrogates, so they survive the trip). */
const jsonString = (s: fc.Arbitrary<string>) => s.map((v) => JSON.stringify(v));

export const scalarText: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('null', 'true', 'false', '0', '-1', '1.5'),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((n) => JSON.stringify(n)),
  fc.integer().map(String),
  hugeNumberText,
  jsonString(hostileString()),
);

/** Object keys that mean something to JavaScript, to querystring parsers or to Postgres JSON paths. */
export const hostileKey = fc.oneof(fc.constantFrom('__proto__', 'constructor', 'prototype', '', ' ', '$where', '{}', 'a.b', '0', '-1', 'length'), fc.string({ maxLength: 12 }));

function objectText(entries: [string, string][]): string {
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`;
}

/** Any JSON text, as nested as `maxDepth`, with hostile keys and scalars. */
export function jsonText(maxDepth = 4): fc.Arbitrary<string> {
  const { value } = fc.letrec<{ value: string }>((tie) => ({
    value: fc.oneof(
      { depthSize: 'small', maxDepth },
      scalarText,
      fc.array(tie('value'), { maxLength: 5 }).map((items) => `[${items.join(',')}]`),
      fc.array(fc.tuple(hostileKey, tie('value')), { maxLength: 5 }).map(objectText),
    ),
  }));
  return value;
}

/** Nesting deeper than any recursive walker expects: arrays, objects, and both. */
export const deepNesting = fc.tuple(fc.constantFrom(100, 1_000, 10_000, 100_000), fc.constantFrom('array', 'object', 'mixed')).map(([depth, kind]) => {
  if (kind === 'array') return '['.repeat(depth) + ']'.repeat(depth);
  if (kind === 'object') return '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
  return '{"a":['.repeat(depth) + ']}'.repeat(depth);
});

/** Bodies that are not JSON at all, or JSON of a shape no route takes. */
export const notJsonBody = fc.oneof(
  fc.constantFrom('', ' ', '{', '}', '[', '{"a":1', '{"a":1}}', "{'a':1}", '{"a":1,}', 'NaN', 'null', '"str"', '1', 'true', '\uFEFF{}', '{"a":"\\ud800"}', '{"a":"\\u0000"}', 'url=x&events=y', '<xml/>'),
  fc.string(),
  fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b).toString('latin1')),
);

export type JsonSchema = {
  $ref?: string;
  type?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  enum?: unknown[];
  example?: unknown;
  minimum?: number;
  maximum?: number;
  default?: unknown;
  additionalProperties?: boolean | JsonSchema;
};

/** Values a schema's field is likely to meet in life, by field name, beyond what the schema says. */
export type FieldHints = Record<string, fc.Arbitrary<string>>;

const numberEdges = (s: JsonSchema) => {
  const edges = [s.minimum, s.maximum].filter((n): n is number => typeof n === 'number').flatMap((n) => [n - 1, n, n + 1]);
  return fc.oneof(fc.constantFrom(...edges.map(String), '0', '1.5', '-1'), hugeNumberText, fc.integer().map(String));
};

/**
 * JSON text for a JSON Schema (as in an OpenAPI document): mostly what the schema asks, sometimes
 * not (a wrong type, a hostile value, a missing required field, an unknown or `__proto__` key), so
 * both the accepting and the refusing paths are walked. `validOnly` (with hints that give valid
 * values) keeps to what the schema asks, so requests also get past validation to the services.
 */
export function fromSchema(schema: JsonSchema, components: Record<string, JsonSchema>, hints: FieldHints = {}, name = '', depth = 0, validOnly = false): fc.Arbitrary<string> {
  const recurse = (s: JsonSchema, n: string) => fromSchema(s, components, hints, n, depth + 1, validOnly);
  if (schema.$ref) return fromSchema(components[schema.$ref.split('/').pop()!] ?? {}, components, hints, name, depth, validOnly);
  const wrong = fc.oneof(scalarText, jsonText(2));
  let right: fc.Arbitrary<string>;
  if (hints[name]) right = jsonString(hints[name]);
  else if (schema.enum) right = fc.constantFrom(...schema.enum.map((v) => JSON.stringify(v)));
  else if (schema.type === 'object' && schema.properties && depth < 4) {
    const props = schema.properties;
    const required = new Set(schema.required ?? []);
    const fields = Object.keys(props).map((key) =>
      validOnly && required.has(key)
        ? recurse(props[key], key).map((v): [string, string] | undefined => [key, v])
        : fc.option(recurse(props[key], key).map((v): [string, string] => [key, v]), { freq: required.has(key) ? 12 : 2, nil: undefined }),
    );
    const extra = fc.array(fc.tuple(hostileKey, scalarText), { maxLength: 2 });
    right = fc.tuple(fc.tuple(...fields), validOnly ? fc.constant([] as [string, string][]) : fc.oneof({ weight: 6, arbitrary: fc.constant([] as [string, string][]) }, { weight: 1, arbitrary: extra })).map(([f, e]) =>
      objectText([...f.filter((x): x is [string, string] => x !== undefined), ...e]),
    );
  } else if (schema.type === 'object') {
    right = validOnly
      ? fc.dictionary(fc.string({ maxLength: 8 }), fc.oneof(fc.string(), fc.integer(), fc.boolean()), { maxKeys: 4 }).map((o) => JSON.stringify(o))
      : fc.oneof({ weight: 5, arbitrary: fc.array(fc.tuple(hostileKey, jsonText(2)), { maxLength: 6 }).map(objectText) }, { weight: 1, arbitrary: deepNesting });
  } else if (schema.type === 'array') {
    right = fc.array(recurse(schema.items ?? {}, `${name}[]`), { minLength: validOnly ? 1 : 0, maxLength: 4 }).map((items) => `[${items.join(',')}]`);
  } else if (schema.type === 'boolean') right = fc.constantFrom('true', 'false');
  else if (schema.type === 'number' || schema.type === 'integer') right = numberEdges(schema);
  else if (schema.type === 'string') right = jsonString(fc.oneof(schema.example !== undefined ? fc.constant(String(schema.example)) : fc.string(), hostileString()));
  else right = jsonText(2);
  return validOnly ? right : fc.oneof({ weight: 8, arbitrary: right }, { weight: 1, arbitrary: wrong });
}

/** What a query parameter of this schema gets: values in and out of its range, and hostile ones. */
export function queryValue(schema: JsonSchema, name: string, hints: FieldHints = {}): fc.Arbitrary<string> {
  const typed: fc.Arbitrary<string>[] = [];
  if (hints[name]) typed.push(hints[name]);
  if (schema.enum) typed.push(fc.constantFrom(...schema.enum.map(String)));
  if (schema.type === 'number' || schema.type === 'integer') typed.push(numberEdges(schema));
  if (schema.example !== undefined) typed.push(fc.constant(String(schema.example)));
  return fc.oneof({ weight: 4, arbitrary: typed.length ? fc.oneof(...typed) : fc.string() }, { weight: 2, arbitrary: hostileString() });
}

// Herald's own vocabulary: field names whose valid values no schema spells out.

/** Webhook URLs: ones that pass (loopback is allowed in tests), ones refused, none that need DNS. */
export const webhookUrl = fc.oneof(
  fc.constantFrom('http://127.0.0.1:9/hook', 'https://127.0.0.1:9/h?x=1', 'http://[::1]:9/h', 'http://localhost:9/h', 'http://10.0.0.1/h'),
  fc.constantFrom('ftp://127.0.0.1/h', 'http://user:pass@127.0.0.1/h', 'http://169.254.169.254/latest', 'http://2130706433/h', 'http://[::ffff:127.0.0.1]/h', 'javascript:alert(1)', '//127.0.0.1/h', 'http://', 'http://127.0.0.1:99999/h', 'http://0/h'),
  fc.string({ maxLength: 30 }).map((p) => `http://127.0.0.1:9/${percentEncode(p)}`),
  longString.map((p) => `http://127.0.0.1:9/${p}`),
);

export const eventSelector = fc.oneof(
  fc.constantFrom(...DELIVERABLE_EVENT_TYPES, '*', ...DELIVERABLE_MODULES.map((m) => `${m}.*`)),
  fc.constantFrom('webhooks.*', 'webhooks.create', 'orders', 'orders.', '.create', 'orders.create.x', 'ORDERS.CREATE', '**', 'orders.*.*'),
);

export const HERALD_HINTS: FieldHints = {
  url: webhookUrl,
  'events[]': eventSelector,
  secret: fc.oneof(fc.string({ minLength: 16, maxLength: 64 }), fc.string({ maxLength: 15 }), fc.constant('s'.repeat(257))),
  from: dateEdge,
  to: dateEdge,
  event: eventSelector,
  entityType: fc.constantFrom('order', 'webhook', 'catalog', ''),
};

/** Hints that give only values Herald accepts, for requests meant to succeed. */
export const VALID_HINTS: FieldHints = {
  url: fc.constantFrom('http://127.0.0.1:9/hook', 'https://127.0.0.1:9/h?x=1', 'http://[::1]:9/h', 'http://localhost:9/h'),
  'events[]': fc.constantFrom(...DELIVERABLE_EVENT_TYPES, '*', ...DELIVERABLE_MODULES.map((m) => `${m}.*`)),
  secret: fc.string({ unit: 'grapheme-ascii', minLength: 16, maxLength: 64 }),
};
