import fc from 'fast-check';
import { Client, errors } from 'undici';
import { ErrorCode, REQUEST_ID_HEADER } from '@herald/contracts';
import { statusOf } from '../../apps/api-gateway/src/errors/error.filter';
import { rawRequest } from '../raw-http';
import { FieldHints, HERALD_HINTS, JsonSchema, VALID_HINTS, badPercent, deepNesting, fromSchema, hostileKey, hostileString, jsonText, notJsonBody, percentEncode, queryValue } from './generators';

/** One HTTP request as the fuzz sends it: the path as it goes on the wire (already encoded). */
export interface FuzzRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
}

export interface FuzzResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

interface Operation {
  method: string;
  template: string;
  params: { name: string; in: string; schema: JsonSchema }[];
  body?: JsonSchema;
}

export interface OpenApiDocument {
  paths: Record<string, Record<string, { parameters?: { name: string; in: string; schema?: JsonSchema }[]; requestBody?: { content?: Record<string, { schema?: JsonSchema }> } }>>;
  components?: { schemas?: Record<string, JsonSchema> };
}

export function operationsOf(doc: OpenApiDocument): Operation[] {
  return Object.entries(doc.paths).flatMap(([template, ops]) =>
    Object.entries(ops).map(([method, op]) => ({
      method: method.toUpperCase(),
      template,
      params: (op.parameters ?? []).map((p) => ({ name: p.name, in: p.in, schema: p.schema ?? {} })),
      body: op.requestBody?.content?.['application/json']?.schema,
    })),
  );
}

/** Who is asking: the keys of `api-keys-fixture.ts` (and any the test adds), none, or junk. */
export function credentials(keys: string[]): fc.Arbitrary<Record<string, string>> {
  return fc.oneof(
    { weight: 8, arbitrary: fc.constantFrom(...keys).map((k) => ({ 'x-api-key': k })) },
    { weight: 2, arbitrary: fc.constantFrom(...keys).map((k) => ({ authorization: `Bearer ${k}` })) },
    { weight: 1, arbitrary: fc.constant<Record<string, string>>({}) },
    { weight: 1, arbitrary: fc.constantFrom<Record<string, string>>({ 'x-api-key': '' }, { 'x-api-key': 'hrld_nobody' }, { authorization: 'Bearer' }, { authorization: 'Basic eDp5' }, { 'x-api-key': 'x'.repeat(10_000) }) },
  );
}

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT', 'PROPFIND', 'SEARCH', 'QUERY', 'PURGE', 'FOO', 'get', 'G ET', 'GET\u0000'];

const contentType = fc.constantFrom('application/json', 'application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/octet-stream', 'application/json; charset=latin1', ';;;', 'text', '*/*', '');

/** Headers besides the key: content types, request ids, and odd ones a client might send. */
const oddHeaders: fc.Arbitrary<Record<string, string>> = fc
  .record(
    {
      'content-type': contentType,
      [REQUEST_ID_HEADER]: fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom('req-1', 'x'.repeat(201), 'a b', '\u00e9')),
      accept: fc.constantFrom('application/json', 'text/html', '*/*', 'application/xml', ''),
      'accept-encoding': fc.constantFrom('gzip', 'br', 'identity', '*'),
      'content-encoding': fc.constantFrom('gzip', 'deflate', 'br', 'x'),
      expect: fc.constantFrom('100-continue', 'nothing'),
      'x-forwarded-for': fc.constantFrom('1.2.3.4', 'junk'),
      'accept-version': fc.constantFrom('1', '2'),
    },
    { requiredKeys: [] },
  )
  // Header values cannot hold CR, LF or NUL on the wire (any client refuses them): printable Latin-1 only.
  .map((h) => Object.fromEntries(Object.entries(h).filter(([, v]) => /^[\t\x20-\x7e\x80-\xff]*$/.test(v))));

/** Most requests carry what a client library sends, so that they get past the headers to the routes. */
const extraHeaders: fc.Arbitrary<Record<string, string>> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom<Record<string, string>>({}, { 'content-type': 'application/json' }) },
  { weight: 2, arbitrary: oddHeaders },
);

/** A path parameter: real ids, well-formed unknown ones, hostile text well and badly encoded. */
function pathParam(ids: () => string[]): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 4, arbitrary: fc.constant(null).map(() => ids()).chain((known) => (known.length ? fc.constantFrom(...known) : fc.constant('wh_01HQZX3V8Y5T7K9M2N4P6R8S0A'))) },
    { weight: 2, arbitrary: fc.constantFrom('wh_01HQZX3V8Y5T7K9M2N4P6R8S0A', 'dlv_01HQZX3V8Y5T7K9M2N4P6R8S0A', 'wh_00000000000000000000000000', 'wh_7ZZZZZZZZZZZZZZZZZZZZZZZZZ', 'webhook', 'order') },
    { weight: 3, arbitrary: hostileString().map(percentEncode) },
    { weight: 2, arbitrary: fc.tuple(fc.string({ maxLength: 6 }).map(percentEncode), badPercent, fc.string({ maxLength: 6 }).map(percentEncode)).map((p) => p.join('')) },
    { weight: 1, arbitrary: fc.constantFrom('', '.', '..', '%2F', '%2e%2e', 'a/b', '%20', '\u00e9', ';a=b', 'x'.repeat(201), '%C3%A9'.repeat(150)) },
  );
}

/** A query string: the operation's parameters in and out of range, repeated, as arrays, polluted. */
function queryString(op: Operation, hints: FieldHints): fc.Arbitrary<string> {
  const params = op.params.filter((p) => p.in === 'query');
  const pairs = params.map((p) => fc.option(queryValue(p.schema, p.name, hints).map((v) => [p.name, v] as const), { freq: 2, nil: undefined }));
  const encoded = (pair: readonly [string, string]) => `${percentEncode(pair[0])}=${percentEncode(pair[1])}`;
  const hostilePairs = fc.array(
    fc.oneof(
      fc.tuple(fc.constantFrom(...params.map((p) => p.name), 'limit'), fc.string({ maxLength: 5 })).map(([n, v]) => `${n}=1&${n}=${percentEncode(v)}`),
      fc.constantFrom(...params.map((p) => p.name), 'limit', 'from').map((n) => fc.constantFrom(`${n}[]=1`, `${n}[0]=1&${n}[1]=2`, `${n}[a]=1`, `${n}=`, n, `${n}=1=2`)).chain((a) => a),
      fc.constantFrom('__proto__[limit]=1', '__proto__=x', 'constructor[prototype][x]=1', '__proto__.x=1', 'toString=1', 'hasOwnProperty=x', '&&&', '=', ';', '?', '#', 'a=%'),
      fc.tuple(hostileKey, hostileString()).map(([k, v]) => `${percentEncode(k)}=${percentEncode(v)}`),
      badPercent.map((b) => `limit=${b}`),
    ),
    { maxLength: 3 },
  );
  return fc
    .tuple(fc.tuple(...pairs), fc.oneof({ weight: 3, arbitrary: fc.constant([] as string[]) }, { weight: 2, arbitrary: hostilePairs }))
    .map(([good, bad]) => [...good.filter((p): p is readonly [string, string] => p !== undefined).map(encoded), ...bad].join('&'));
}

/** A request body: what the operation takes (right and wrong), hostile JSON, not JSON, too big. */
function requestBody(op: Operation, components: Record<string, JsonSchema>, hints: FieldHints): fc.Arbitrary<string | undefined> {
  const options: { weight: number; arbitrary: fc.Arbitrary<string | undefined> }[] = [
    { weight: 3, arbitrary: fc.constant(undefined) },
    { weight: 2, arbitrary: jsonText(4) },
    { weight: 1, arbitrary: notJsonBody },
    { weight: 1, arbitrary: deepNesting },
    { weight: 1, arbitrary: fc.constantFrom(1024 * 1024 - 64, 1024 * 1024 + 1, 2 * 1024 * 1024).map((n) => `{"pad":"${'x'.repeat(n)}"}`) },
  ];
  if (op.body) {
    options.push({ weight: 8, arbitrary: fromSchema(op.body, components, hints) });
    options.push({ weight: 6, arbitrary: fromSchema(op.body, components, VALID_HINTS, '', 0, true) });
  }
  return fc.oneof(...options);
}

/** Paths beside the document's: unknown, unnormalized, absolute-form, asterisk-form. */
const strayPath = fc.oneof(
  fc.constantFrom('/', '*', '//', '/api', '/api/', '/API/WEBHOOKS', '/api/webhooks/', '//api/webhooks', '/api/./webhooks', '/api/x/../webhooks', '/api/webhooks;x', 'http://herald/api/webhooks', '/api/docs', '/api/docs/ui', '/api/docs/openapi.json', '/healthz', '/readyz', '/metrics', '/api/%', '/api/webhooks/%E0%A4%A', '/api/audit/verify/'),
  fc.array(fc.oneof(fc.string({ maxLength: 8 }).map(percentEncode), badPercent), { minLength: 1, maxLength: 4 }).map((s) => `/api/${s.join('/')}`),
);

/**
 * Requests built from the OpenAPI document: an operation, its path template filled, its query and
 * body generated from its schemas, mixed with other methods, stray paths and hostile headers.
 */
export function requestFrom(doc: OpenApiDocument, keys: string[], ids: () => string[], hints: FieldHints = HERALD_HINTS): fc.Arbitrary<FuzzRequest> {
  const components = doc.components?.schemas ?? {};
  const ops = operationsOf(doc);
  const opRequest = fc.constantFrom(...ops).chain((op) => {
    const names = [...op.template.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
    return fc
      .record({
        method: fc.oneof({ weight: 8, arbitrary: fc.constant(op.method) }, { weight: 1, arbitrary: fc.constantFrom(...METHODS) }),
        values: fc.tuple(...names.map(() => pathParam(ids))),
        query: queryString(op, hints),
        body: requestBody(op, components, hints),
      })
      .map(({ method, values, query, body }) => {
        let path = op.template;
        names.forEach((n, i) => (path = path.replace(`{${n}}`, values[i])));
        return { method, path: query ? `${path}?${query}` : path, body };
      });
  });
  const stray = fc.record({ method: fc.constantFrom(...METHODS), path: strayPath, body: fc.option(jsonText(2), { nil: undefined }) });
  return fc
    .tuple(fc.oneof({ weight: 9, arbitrary: opRequest }, { weight: 1, arbitrary: stray }), credentials(keys), extraHeaders)
    .map(([r, auth, headers]) => ({ method: r.method, path: r.path, headers: { ...headers, ...auth }, body: r.body }));
}

/** What the fuzz saw, for the figure in docs/api.md. */
export interface Tally {
  requests: number;
  status5xx: number;
  resets: number;
  nonEnvelope: number;
  byStatus: Record<number, number>;
}

export const newTally = (): Tally => ({ requests: 0, status5xx: 0, resets: 0, nonEnvelope: 0, byStatus: {} });

/**
 * Sends through undici (a keep-alive client, as a service would use), or on a raw socket when
 * undici refuses to send it (a method or path no client library emits, a body on GET). A network
 * error is an answer that never came: the caller counts it as a reset.
 */
export class FuzzClient {
  private client: Client;

  constructor(private readonly url: string) {
    this.client = new Client(url, { pipelining: 1 });
  }

  async send(req: FuzzRequest): Promise<FuzzResponse> {
    const bodyAllowed = req.body !== undefined && req.method !== 'GET' && req.method !== 'HEAD';
    const viaRaw = req.method === 'CONNECT' || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(req.method) || (req.body !== undefined && !bodyAllowed) || !/^(\/|\*$)/.test(req.path);
    if (!viaRaw) {
      try {
        const res = await this.client.request({ method: req.method, path: req.path, headers: req.headers, body: bodyAllowed ? req.body : undefined });
        return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
      } catch (err) {
        if (!(err instanceof errors.InvalidArgumentError || err instanceof errors.NotSupportedError)) throw err;
      }
    }
    const body = req.body === undefined ? Buffer.alloc(0) : Buffer.from(req.body, 'utf8');
    const lines = [`${req.method} ${req.path} HTTP/1.1`, 'host: herald', ...Object.entries(req.headers).map(([k, v]) => `${k}: ${v}`)];
    if (req.body !== undefined) lines.push(`content-length: ${body.length}`);
    return rawRequest(this.url, `${lines.join('\r\n')}\r\n\r\n`, body);
  }

  close(): Promise<void> {
    return this.client.close();
  }
}

const KNOWN_CODES = new Set<string>(Object.values(ErrorCode));

/**
 * What is wrong with an answer, by SPEC 2: nothing, or a list. No 5xx; every error in the one
 * envelope with a known code and that code's status; every API success body `{"data": …}`; every
 * response with a request id.
 */
export function problemsWith(req: FuzzRequest, res: FuzzResponse): string[] {
  const problems: string[] = [];
  if (res.status >= 500) problems.push(`status ${res.status}`);
  if (!res.headers[REQUEST_ID_HEADER]) problems.push('no x-request-id');
  if (req.method === 'HEAD' || res.status < 200 || res.status === 204 || res.status === 304) return problems;
  let body: unknown;
  try {
    body = JSON.parse(res.body);
  } catch {
    body = undefined;
  }
  const path = req.path.split('?')[0];
  if (res.status >= 400) {
    const e = (body as { error?: { code?: unknown; message?: unknown; details?: unknown } } | undefined)?.error;
    const shapeOk =
      body !== null && typeof body === 'object' && Object.keys(body).length === 1 && e !== undefined && typeof e.message === 'string' &&
      Object.keys(e).every((k) => ['code', 'message', 'details'].includes(k)) &&
      (e.details === undefined || (Array.isArray(e.details) && e.details.every((d: { field?: unknown; message?: unknown }) => typeof d.field === 'string' && typeof d.message === 'string')));
    if (!shapeOk) problems.push(`error body not in the envelope: ${res.body.slice(0, 200)}`);
    else if (typeof e.code !== 'string' || !KNOWN_CODES.has(e.code)) problems.push(`unknown code ${String(e.code)}`);
    else if (statusOf(e.code as ErrorCode) !== res.status) problems.push(`code ${e.code} with status ${res.status}`);
  } else if (res.status < 300 && path.startsWith('/api/') && !path.startsWith('/api/docs')) {
    const keys = body !== null && typeof body === 'object' ? Object.keys(body) : [];
    if (!keys.includes('data') || !keys.every((k) => k === 'data' || k === 'nextCursor')) problems.push(`success body is not {"data": …}: ${res.body.slice(0, 200)}`);
  }
  return problems;
}

/** A request as a line a person can replay with curl (bodies cut). */
export function describeRequest(req: FuzzRequest): string {
  const body = req.body === undefined ? '' : ` body(${req.body.length})=${JSON.stringify(req.body.slice(0, 120))}`;
  return `${JSON.stringify(req.method)} ${JSON.stringify(req.path.slice(0, 300))} headers=${JSON.stringify(req.headers).slice(0, 300)}${body}`;
}
