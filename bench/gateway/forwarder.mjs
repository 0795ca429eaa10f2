// The floor: a bare node:http server that forwards GET /api/webhooks to the dispatcher over NATS
// and writes the reply as it came. No Nest, no auth, no validation, no logging: what any
// HTTP→NATS bridge must pay at least. Started by run.mjs.
import { createServer } from 'node:http';
import { connect, headers } from '@nats-io/transport-node';

const nc = await connect({ servers: process.env.NATS_URL, noAsyncTraces: true });
const subject = `${process.env.RPC_SUBJECT_PREFIX}.dispatcher.webhooks.list`;
let n = 0;
const server = createServer(async (req, res) => {
  const requestId = `req_fwd_${++n}`;
  const h = headers();
  h.set('x-request-id', requestId);
  try {
    const msg = await nc.request(subject, JSON.stringify({ context: { organizationId: 'default', actorId: 'dev-staff-key', requestId }, payload: {} }), { timeout: 5000, headers: h });
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'x-request-id': requestId });
    res.end(msg.data);
  } catch {
    res.writeHead(503).end();
  }
});
server.listen(Number(process.env.PORT), '127.0.0.1', () => process.stdout.write('ready\n'));
process.on('SIGTERM', () => server.close(() => nc.close().then(() => process.exit(0))));
