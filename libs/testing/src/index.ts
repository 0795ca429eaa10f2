export * from './lib/test-env';
