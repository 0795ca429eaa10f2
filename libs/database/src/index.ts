export * from './lib/database';
export * from './lib/failures';
