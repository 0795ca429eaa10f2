import fc from 'fast-check';
import { FuzzRequest, problemsWith, requestFrom } from './http-requests';
import { percentEncode } from './generators';

/** The fuzz suite's own judge and generators: a judge that passes everything would prove nothing. */
describe('problemsWith (SPEC 2 judged per answer)', () => {
  const req = (method = 'GET', path = '/api/webhooks'): FuzzRequest => ({ method, path, headers: {} });
  const res = (status: number, body: string, requestId: string | null = 'req_1') => ({ status, body, headers: { 'x-request-id': requestId ?? undefined } });

  it('accepts the envelope with its status and a {"data": …} success', () => {
    expect(problemsWith(req(), res(404, '{"error":{"code":"NOT_FOUND","message":"No such route."}}'))).toEqual([]);
    expect(problemsWith(req(), res(422, '{"error":{"code":"VALIDATION_FAILED","message":"m","details":[{"field":"url","message":"x"}]}}'))).toEqual([]);
    expect(problemsWith(req(), res(200, '{"data":[],"nextCursor":null}'))).toEqual([]);
    expect(problemsWith(req('HEAD'), res(200, ''))).toEqual([]);
    expect(problemsWith(req('GET', '/healthz'), res(200, '{"status":"ok"}'))).toEqual([]);
  });

  it("flags Fastify's own body, a code under the wrong status, an unknown code, a 5xx, a missing request id", () => {
    expect(problemsWith(req(), res(400, '{"statusCode":400,"code":"FST_ERR_BAD_URL","error":"Bad Request","message":"x"}'))[0]).toMatch(/not in the envelope/);
    expect(problemsWith(req(), res(400, '{"error":{"code":"NOT_FOUND","message":"m"}}'))).toEqual(['code NOT_FOUND with status 400']);
    expect(problemsWith(req(), res(400, '{"error":{"code":"FST_ERR_BAD_URL","message":"m"}}'))).toEqual(['unknown code FST_ERR_BAD_URL']);
    expect(problemsWith(req(), res(500, '{"error":{"code":"INTERNAL_ERROR","message":"m"}}'))).toEqual(['status 500']);
    expect(problemsWith(req(), res(417, ''))[0]).toMatch(/not in the envelope/);
    expect(problemsWith(req(), res(200, '{"data":[]}', null))).toEqual(['no x-request-id']);
    expect(problemsWith(req(), res(200, '{"items":[]}'))[0]).toMatch(/success body/);
  });
});

describe('generators', () => {
  const doc = {
    paths: { '/api/webhooks/{id}': { patch: { parameters: [{ name: 'id', in: 'path', schema: { type: 'string' } }], requestBody: { content: { 'application/json': { schema: { $ref: '#/components/schemas/U' } } } } } } },
    components: { schemas: { U: { type: 'object', properties: { url: { type: 'string' }, isActive: { type: 'boolean' } } } } },
  };

  it('are reproducible from a seed (FUZZ_SEED replays a run)', () => {
    const arb = requestFrom(doc, ['k'], () => []);
    expect(fc.sample(arb, { seed: 42, numRuns: 20 })).toEqual(fc.sample(arb, { seed: 42, numRuns: 20 }));
  });

  it('percent-encode a lone surrogate as its 3 bytes, which no UTF-8 decoder accepts', () => {
    expect(percentEncode('a\uD800b/')).toBe('a%ED%A0%80b%2F');
    expect(percentEncode('é😀')).toBe('%C3%A9%F0%9F%98%80');
  });
});
