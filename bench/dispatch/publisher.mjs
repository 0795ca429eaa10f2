// The dispatch benchmark's burst publisher, on a thread of its own: 500 JetStream publishes in
// flight keep an event loop busy, and the receiver, on the benchmark's main thread, would answer
// late while they run. Commerce services publish from processes of their own too.
import { parentPort, workerData } from 'node:worker_threads';
import { jetstream } from '@nats-io/jetstream';
import { headers as natsHeaders } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { ulid } from 'ulid';

const { natsUrl, subject } = workerData;
const nc = await connect({ servers: natsUrl });
const js = jetstream(nc);

function publish(i) {
  const event = { id: `evt_${ulid()}`, type: 'orders.create', timestamp: new Date().toISOString(), organizationId: 'default', data: { id: `ord-${i}`, grandTotal: 4999, currency: 'USD' } };
  const h = natsHeaders();
  h.set('Nats-Msg-Id', event.id);
  return js.publish(subject, JSON.stringify(event), { headers: h, timeout: 30_000 });
}

parentPort.on('message', async (msg) => {
  if (msg.close) {
    await nc.close();
    parentPort.close();
    return;
  }
  // At most 500 acks outstanding (more time out on a loaded machine).
  let i = 0;
  try {
    await Promise.all(Array.from({ length: 500 }, async () => {
      while (i < msg.count) await publish(i++);
    }));
    parentPort.postMessage({ published: msg.count });
  } catch (err) {
    parentPort.postMessage({ error: err.message });
  }
});
parentPort.postMessage({ ready: true });
