export * from './lib/bus.options';
export * from './lib/nats-auth';
export * from './lib/event-stream';
export * from './lib/event-publisher';
export * from './lib/batch-consumer';
export * from './lib/rpc';
export * from './lib/bus.service';
export * from './lib/bus.module';
