import { createServer } from 'node:http';
import { AddressInfo } from 'node:net';
import { WebhookHttpClient, sign } from '../apps/dispatcher/src/delivery/webhook-http-client';
import { Resolver } from '../apps/dispatcher/src/webhooks/url-policy';
import { Receiver, signatureValid } from './receiver';

/** The HTTP client alone, against a real receiver, with a resolver the test controls (DNS rebinding). */
describe('webhook HTTP client', () => {
  let receiver: Receiver;
  const clients: WebhookHttpClient[] = [];

  beforeAll(async () => {
    receiver = await Receiver.start();
  });

  afterAll(async () => {
    for (const c of clients) await c.close();
    await receiver.close();
  });

  function client(resolve: Resolver, allowPrivate: boolean, timeoutMs = 2000): WebhookHttpClient {
    const c = new WebhookHttpClient({ policy: { allowPrivate, httpsOnly: false }, timeoutMs, connections: 4, userAgent: 'Herald-Webhooks/test', resolve });
    clients.push(c);
    return c;
  }

  const body = Buffer.from(JSON.stringify({ id: 'evt_1', type: 'orders.create', timestamp: '2026-03-15T10:30:00.000Z', data: { note: 'ünïcödé' } }));

  it('connects to the address the check approved, not to what the name resolves to later', async () => {
    let answers = ['127.0.0.1'];
    const calls: string[] = [];
    const c = client(async (host) => {
      calls.push(host);
      return answers.map((address) => ({ address, family: 4 as const }));
    }, true);
    // `hooks.example.invalid` exists in no DNS: the request can only reach the receiver through the approved address.
    const r = await c.send({ url: `http://hooks.example.invalid:${receiver.port}/pinned`, secret: 'whsec_pin', body, headers: {} });
    expect(r).toMatchObject({ statusCode: 200, error: null, responseBody: 'OK' });
    expect(calls).toEqual(['hooks.example.invalid']);
    const [got] = receiver.at('/pinned');
    expect(got.headers.host).toBe(`hooks.example.invalid:${receiver.port}`);
    expect(signatureValid(got, 'whsec_pin')).toBe(true);
    expect(got.headers['x-commerce-signature']).toBe(sign(body, 'whsec_pin'));

    // The name now resolves to a private address and private addresses are not allowed: refused, nothing sent.
    answers = ['10.1.2.3'];
    const strict = client(async () => answers.map((address) => ({ address, family: 4 as const })), false);
    const refused = await strict.send({ url: `http://hooks.example.invalid:${receiver.port}/pinned`, secret: 'whsec_pin', body, headers: {} });
    expect(refused.statusCode).toBeNull();
    expect(refused.error).toContain('refused before sending');
    // The attempt's error (which the tenant reads) names the rule, not the internal address.
    expect(refused.error).not.toContain('10.1.2.3');
    expect(receiver.at('/pinned')).toHaveLength(1);
  });

  it('does not follow redirects, keeps at most 4 KiB of the body, and reports timeouts and refused connections', async () => {
    const c = client(async () => [{ address: '127.0.0.1', family: 4 }], true, 300);
    receiver.on('/redirect', () => ({ status: 307, headers: { location: '/elsewhere' } }));
    receiver.on('/big', () => ({ status: 500, body: 'é'.repeat(5000) }));
    receiver.on('/slow', () => ({ status: 200, delayMs: 1000 }));
    receiver.on('/retry-later', () => ({ status: 429, headers: { 'retry-after': '120' } }));
    const send = (path: string, port = receiver.port) => c.send({ url: `http://127.0.0.1:${port}${path}`, secret: 's', body, headers: {} });

    expect(await send('/redirect')).toMatchObject({ statusCode: 307, error: null });
    expect(receiver.at('/elsewhere')).toHaveLength(0);

    const big = await send('/big');
    expect(big.statusCode).toBe(500);
    expect(Buffer.byteLength(big.responseBody!)).toBeLessThanOrEqual(4096 + 2);
    expect(big.responseBody!.startsWith('éé')).toBe(true);

    const slow = await send('/slow');
    expect(slow).toMatchObject({ statusCode: null, error: 'timed out after 300 ms' });

    expect(await send('/retry-later')).toMatchObject({ statusCode: 429, retryAfter: '120' });

    const closed = await send('/x', 1);
    expect(closed.statusCode).toBeNull();
    expect(closed.error).toMatch(/ECONNREFUSED/);
  });

  it('counts a slow DNS answer in the timeout, and sends nothing once it has passed', async () => {
    const c = client(async () => {
      await new Promise((r) => setTimeout(r, 700));
      return [{ address: '127.0.0.1', family: 4 as const }];
    }, true, 300);
    const r = await c.send({ url: `http://slow-dns.example.invalid:${receiver.port}/late`, secret: 's', body, headers: {} });
    expect(r).toMatchObject({ statusCode: null, error: 'timed out after 300 ms' });
    expect(r.durationMs).toBeLessThan(650);
    await new Promise((r) => setTimeout(r, 600)); // the answer arrives; nothing may be sent then
    expect(receiver.at('/late')).toHaveLength(0);
  });

  it('reports a request undici refuses as a failed attempt, without sending it', async () => {
    const c = client(async () => [{ address: '127.0.0.1', family: 4 }], true);
    const r = await c.send({ url: `http://127.0.0.1:${receiver.port}/refused`, secret: 's', body, headers: { 'x-commerce-event': 'orders.create\r\nx-injected: 1' } });
    expect(r).toMatchObject({ statusCode: null, responseBody: null, error: expect.stringMatching(/header/i) });
    expect(receiver.at('/refused')).toHaveLength(0);
  });

  it('times out a body that arrives too slowly, and stops reading a huge one without losing the connection pool', async () => {
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        if (req.url === '/dribble') {
          res.writeHead(200);
          res.write('a');
          setTimeout(() => res.end('b'), 1000).unref();
        } else if (req.url === '/huge') {
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.end('x'.repeat(200 * 1024));
        } else {
          res.writeHead(204).end();
        }
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    try {
      const c = client(async () => [{ address: '127.0.0.1', family: 4 }], true, 300);
      const send = (path: string) => c.send({ url: `http://127.0.0.1:${port}${path}`, secret: 's', body, headers: {} });
      // The headers came in time; the timeout covers the body too.
      expect(await send('/dribble')).toMatchObject({ statusCode: null, error: 'timed out after 300 ms', responseBody: null });
      const huge = await send('/huge');
      expect(huge).toMatchObject({ statusCode: 200, error: null });
      expect(huge.responseBody).toBe('x'.repeat(4096));
      expect(await send('/after')).toMatchObject({ statusCode: 204, error: null, responseBody: '' });
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});
