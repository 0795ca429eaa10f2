// The webhook-client benchmark's receiver, in a process of its own so that the client's CPU time
// is the client's alone: answers 200 "OK" to every request.
import { createServer } from 'node:http';

const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => res.writeHead(200).end('OK'));
});
server.keepAliveTimeout = 10_000;
server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
process.on('disconnect', () => process.exit(0));
