/**
 * SQLSTATEs of a failure of the database or its environment rather than of the data a statement
 * carried: connection exceptions (08), insufficient resources (53), operator intervention and
 * shutdown (57, which includes statement_timeout's 57014), system errors (58), authentication (28),
 * serialization failures and deadlocks, locks not available, a session ended for idling in a
 * transaction, a database missing, a privilege missing. Retrying fixes them once the environment
 * is back; rejecting the messages would lose events for nothing.
 */
const INFRASTRUCTURE_CLASSES = ['08', '53', '57', '58', '28'];
const INFRASTRUCTURE_CODES = new Set(['40001', '40P01', '55P03', '25P03', '3D000', '42501']);

/** Node's socket errors, and DNS while it cannot answer. */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN', 'ENOTFOUND', 'EAI_AGAIN']);

/**
 * What node-postgres and TypeORM throw, without a code, when the connection is gone or never came
 * (TypeORM releases a query runner whose connection died, and its next statement throws "Query
 * runner already released").
 */
const CLIENT_MESSAGES =
  /^(Connection terminated|Query read timeout|timeout exceeded when trying to connect|Client has encountered a connection error|Client was closed and is not queryable|Cannot use a pool after calling end|Connection is not established|Connection with postgres database is not established|Query runner already released)/;

/**
 * True when `err` is a failure of the infrastructure (connection lost or refused, timeout, server
 * shutting down) that retrying fixes, as opposed to Postgres refusing the data itself (22, 23, 54…)
 * or code failing on one message. Looks through TypeORM's `driverError` and `cause`.
 */
export function isInfrastructureError(err: unknown): boolean {
  let e = err as { code?: unknown; message?: unknown; driverError?: unknown; cause?: unknown } | undefined;
  for (let depth = 0; e && typeof e === 'object' && depth < 5; depth++) {
    const code = e.code;
    if (typeof code === 'string') {
      if (NETWORK_CODES.has(code)) return true;
      if (/^[0-9A-Z]{5}$/.test(code)) return INFRASTRUCTURE_CODES.has(code) || INFRASTRUCTURE_CLASSES.includes(code.slice(0, 2));
    }
    if (typeof e.message === 'string' && CLIENT_MESSAGES.test(e.message)) return true;
    e = (e.driverError ?? e.cause) as typeof e;
  }
  return false;
}
