// An example webhook receiver for docker/compose.yaml: verifies `x-commerce-signature` exactly as the
// seed's verifyWebhookSignature does, de-duplicates on `x-commerce-event-id`, and logs one JSON line
// per delivery. Register it with the secret it knows:
//   curl -X POST localhost:4000/api/webhooks -H 'x-api-key: dev-staff-key' -H 'content-type: application/json' \
//     -d '{"url":"http://receiver:8080/hooks","events":["*"],"secret":"whsec_compose_example_secret"}'
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';

const secret = process.env.RECEIVER_SECRET ?? 'whsec_compose_example_secret';
const port = Number(process.env.PORT ?? 8080);
const seen = new Set();

function verifyWebhookSignature(body, signature, key) {
  const expected = createHmac('sha256', key).update(body).digest('hex');
  return typeof signature === 'string' && signature.length === expected.length && timingSafeEqual(Buffer.from(signature, 'hex'), Buffer.from(expected, 'hex'));
}

createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/healthz') return res.end('ok');
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    const valid = verifyWebhookSignature(body, req.headers['x-commerce-signature'], secret);
    const eventId = req.headers['x-commerce-event-id'];
    const duplicate = seen.has(eventId);
    if (valid) seen.add(eventId);
    console.log(JSON.stringify({ valid, duplicate, event: req.headers['x-commerce-event'], eventId, delivery: req.headers['x-commerce-delivery'], attempt: req.headers['x-commerce-attempt'] }));
    res.statusCode = valid ? 204 : 401;
    res.end();
  });
}).listen(port, () => console.log(`receiver listening on :${port}`));
