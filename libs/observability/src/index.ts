export * from './lib/logging';
export * from './lib/metrics';
export * from './lib/health';
export * from './lib/runtime';
export * from './lib/request-context';
