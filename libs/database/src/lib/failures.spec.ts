import { isInfrastructureError } from './failures';

describe('isInfrastructureError', () => {
  it.each([
    [{ code: 'ECONNREFUSED', message: 'connect ECONNREFUSED 127.0.0.1:5432' }],
    [{ code: '57P01', message: 'terminating connection due to administrator command' }],
    [{ code: '57014', message: 'canceling statement due to statement timeout' }],
    [{ code: '08006', message: 'connection failure' }],
    [{ code: '40P01', message: 'deadlock detected' }],
    [{ code: '53300', message: 'too many connections' }],
    [new Error('Connection terminated unexpectedly')],
    [new Error('Query read timeout')],
    [new Error('timeout exceeded when trying to connect')],
    [new Error('Query runner already released. Cannot run queries anymore.')],
    [{ message: 'Query failed', driverError: { code: '57P03', message: 'the database system is starting up' } }],
    [{ message: 'wrapped', cause: new Error('Connection terminated due to connection timeout') }],
  ])('%j is the infrastructure', (err) => expect(isInfrastructureError(err)).toBe(true));

  it.each([
    [{ code: '22P05', message: 'unsupported Unicode escape sequence' }],
    [{ code: '23505', message: 'duplicate key value violates unique constraint' }],
    [{ code: '54001', message: 'stack depth limit exceeded' }],
    [{ code: '54000', message: 'index row size exceeds btree maximum' }],
    [new RangeError('Maximum call stack size exceeded')],
    [new TypeError("Cannot read properties of undefined (reading 'connection')")],
    [undefined],
    ['a string'],
  ])('%j is the message', (err) => expect(isInfrastructureError(err)).toBe(false));
});
