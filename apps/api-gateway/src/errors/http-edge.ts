import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { ErrorCode, HeraldError, REQUEST_ID_HEADER } from '@herald/contracts';
import type { FastifyError, FastifyReply, FastifyRequest, FastifyServerOptions } from 'fastify';
import { statusOf } from './error.filter';

/**
 * The errors that happen before a request reaches Nest: a URL the router cannot decode, bytes that
 * are not HTTP, and a body still arriving when the answer is ready. Nest's exception filter never
 * sees these, so each gets SPEC 2's envelope here, through the seams Fastify offers for them
 * (`frameworkErrors`, `clientErrorHandler`, an `onSend` hook).
 */

/**
 * How much of an unread body the gateway reads and throws away before it answers (and closes), and
 * for how long. Closing a socket while the client is still sending makes the kernel reset the
 * connection, and the client loses the answer with it (ECONNRESET instead of 413); reading the rest
 * first makes the close a clean FIN. Bounded, so a client streaming without end only costs this.
 */
export const DRAIN_MAX_BYTES = 16 * 1024 * 1024;
export const DRAIN_MAX_MS = 5_000;

/** The longest route parameter: an audit entity id (the envelope's `entity.id`, at most 200). */
export const MAX_PARAM_LENGTH = 200;

function envelope(err: HeraldError): string {
  return JSON.stringify({ error: err.toBody() });
}

/** Resolves once `req`'s body has been read to its end, or the bounds are reached. */
export function drainBody(req: IncomingMessage, maxBytes = DRAIN_MAX_BYTES, maxMs = DRAIN_MAX_MS): Promise<void> {
  if (req.complete || req.readableEnded || req.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    let read = 0;
    const finish = () => {
      clearTimeout(timer);
      req.off('data', onData).off('end', finish).off('close', finish).off('error', finish);
      resolve();
    };
    const onData = (chunk: Buffer) => {
      read += chunk.length;
      if (read > maxBytes) finish();
    };
    const timer = setTimeout(finish, maxMs);
    req.on('data', onData).on('end', finish).on('close', finish).on('error', finish);
    req.resume();
  });
}

/**
 * `onSend` hook: the answer waits until the request's body has been read (bounded). It matters
 * when the body was not read: over the limit (413, which closes the connection), or sent to a
 * route that takes none. A request whose body was parsed is complete and passes at once.
 */
export function answerAfterBody(request: FastifyRequest, _reply: FastifyReply, payload: unknown, done: (err: null, payload: unknown) => void): void {
  if (request.raw.complete) return done(null, payload);
  void drainBody(request.raw).then(() => done(null, payload));
}

/**
 * Fastify's `frameworkErrors`: the router could not decode the path (malformed percent-encoding)
 * or a parameter is longer than any id Herald has. Fastify (and Nest's default for this option)
 * would answer with Fastify's own body; no hook has run yet, so the request id is set here.
 */
function answerFrameworkError(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const err = error.code === 'FST_ERR_MAX_PARAM_LENGTH' ? new HeraldError(ErrorCode.NotFound, 'No such route.') : new HeraldError(ErrorCode.BadRequest, 'The URL is malformed (invalid percent-encoding).');
  reply.header(REQUEST_ID_HEADER, request.id).header('content-type', 'application/json; charset=utf-8');
  void drainBody(request.raw).then(() => reply.code(statusOf(err.code)).send(envelope(err)));
}

function clientErrorMessage(code: string | undefined): string {
  switch (code) {
    case 'HPE_INVALID_METHOD': return 'The request method is not supported.';
    case 'HPE_HEADER_OVERFLOW': return 'The request headers are too large.';
    case 'ERR_HTTP_REQUEST_TIMEOUT': return 'The request did not arrive in time.';
    default: return 'The request is not valid HTTP.';
  }
}

const answeredAt = new WeakMap<Socket, number>();

/**
 * Writes a whole response to a socket no Fastify request owns, then closes it gently: our side
 * ends (FIN) after the answer and the socket stays readable, so a client still sending does not
 * get a reset that would swallow the answer. It is destroyed when the client ends, or after the
 * bounds (`answerClientError` counts the bytes).
 */
function answerOnSocket(socket: Socket, err: HeraldError): void {
  const body = envelope(err);
  const status = statusOf(err.code);
  // `req_<uuid>`, as `requestIdOf` makes them: the client's header could not be read.
  const head = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}`,
    'content-type: application/json; charset=utf-8',
    `content-length: ${Buffer.byteLength(body)}`,
    `${REQUEST_ID_HEADER}: req_${randomUUID()}`,
    'connection: close',
  ];
  socket.end(`${head.join('\r\n')}\r\n\r\n${body}`);
  answeredAt.set(socket, socket.bytesRead);
  socket.once('end', () => socket.destroySoon());
  setTimeout(() => socket.destroySoon(), DRAIN_MAX_MS).unref();
}

/**
 * Fastify's `clientErrorHandler`: Node's HTTP parser refused the bytes (an unknown method, a broken
 * request line or header, headers over the limit, or too slow). There is no request to answer
 * through Fastify, so the answer is written to the socket. Always 400 `BAD_REQUEST`: SPEC 2's
 * table has no 408, 431 or 501, and one status per code keeps clients simple.
 *
 * Node keeps feeding what arrives after the answer to its failed parser, which calls this again for
 * each chunk: the socket is no longer writable then, and this only counts the bytes.
 */
function answerClientError(error: Error & { code?: string }, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  if (!socket.writable) {
    if (socket.bytesRead - (answeredAt.get(socket) ?? 0) > DRAIN_MAX_BYTES) socket.destroy();
    return;
  }
  // A pipelined request fails while the previous answer is being written: it cannot be interleaved.
  const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (inFlight?.headersSent) return void socket.destroy();
  answerOnSocket(socket, new HeraldError(ErrorCode.BadRequest, clientErrorMessage(error.code)));
}

/** The Fastify options that put these errors in SPEC 2's envelope. */
export const HTTP_EDGE_OPTIONS: Pick<FastifyServerOptions, 'frameworkErrors' | 'clientErrorHandler'> = {
  frameworkErrors: answerFrameworkError,
  clientErrorHandler: answerClientError,
};

/**
 * The two requests Node answers (or drops) before Fastify sees them. `CONNECT` (a proxy tunnel) is
 * handed to a `connect` listener, and without one Node destroys the socket: a reset; Herald routes
 * no such method, so it is a 404 like any other unrouted method. An `Expect` other than
 * `100-continue` gets Node's bare 417; RFC 9110 (10.1.1) lets a server ignore it, so the request
 * is served as if it had none.
 */
export function answerOutsideFastify(server: Server): void {
  server.on('connect', (_req: IncomingMessage, socket: Socket) => {
    answerOnSocket(socket, new HeraldError(ErrorCode.NotFound, 'No such route.'));
    // Node has handed the socket over raw: read (and drop) what follows, so its end is seen.
    socket.resume();
  });
  server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => server.emit('request', req, res));
}
