import { connect } from 'node:net';

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * Sends bytes that fetch would refuse or fix up (a bad method, a malformed path, a body larger than
 * any route reads) on a fresh connection, and reads one whole response: the head and then
 * `content-length` bytes of body, and, when the server says `connection: close`, its clean close.
 * Rejects with the socket's error (ECONNRESET, EPIPE) when the connection fails before that, which
 * is what a client sees as a reset. The
 * body is sent in chunks after the head, as a client streaming an upload would, while reading.
 */
export function rawRequest(url: string, head: string, body: Buffer | number = 0, options: { timeoutMs?: number } = {}): Promise<RawResponse> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    let received = Buffer.alloc(0);
    let settled = false;
    let complete: RawResponse | undefined;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      fn();
    };
    const timer = setTimeout(() => settle(() => reject(new Error(`no complete response within ${options.timeoutMs ?? 15_000} ms: ${received.toString('latin1').slice(0, 200)}`))), options.timeoutMs ?? 15_000);
    const tryParse = (): void => {
      if (complete) return;
      const end = received.indexOf('\r\n\r\n');
      if (end < 0) return;
      const [statusLine, ...lines] = received.subarray(0, end).toString('latin1').split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const colon = line.indexOf(':');
        headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1]);
      // A 1xx is not the answer (Node sends 100 Continue by itself): skip it and read on.
      if (status >= 100 && status < 200) {
        received = received.subarray(end + 4);
        return tryParse();
      }
      const length = head.startsWith('HEAD ') ? 0 : Number(headers['content-length'] ?? 0);
      if (received.length < end + 4 + length) return;
      const response = { status, headers, body: received.subarray(end + 4, end + 4 + length).toString('utf8') };
      // The server closes after this answer: it must close cleanly (FIN), with everything sent
      // taken, or a client that is still writing gets ECONNRESET/EPIPE and may lose the answer.
      if (headers.connection === 'close') {
        complete = response;
        socket.end();
      } else settle(() => resolve(response));
    };
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      tryParse();
    });
    socket.on('error', (err) => settle(() => reject(err)));
    socket.on('close', () => settle(() => (complete ? resolve(complete) : reject(new Error(`connection closed before a complete response: ${JSON.stringify(received.toString('latin1').slice(0, 200))}`)))));
    socket.write(head, 'latin1');
    const payload = typeof body === 'number' ? Buffer.alloc(body, 'x') : body;
    let sent = 0;
    const pump = () => {
      while (sent < payload.length && !settled) {
        const chunk = payload.subarray(sent, sent + 64 * 1024);
        sent += chunk.length;
        if (!socket.write(chunk)) return void socket.once('drain', pump);
      }
    };
    pump();
  });
}
