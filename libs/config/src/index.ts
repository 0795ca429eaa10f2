export * from './lib/load-config';
export * from './lib/base.config';
