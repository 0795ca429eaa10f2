import { Controller, Get, Header, Inject } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';

export const METRICS_REGISTRY = Symbol('METRICS_REGISTRY');

/** One registry per application (not prom-client's global one), so several apps can share a process in tests. */
export function createMetricsRegistry(service: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry, prefix: 'herald_' });
  return registry;
}

/**
 * A gauge read at scrape time from `read` (nothing is polled between scrapes). A failed reading
 * sets -1, so an alert can tell "unknown" from "zero"; `read` returning undefined (not started yet)
 * leaves the gauge unset.
 */
export function gaugeOnScrape(registry: Registry, name: string, help: string, read: () => Promise<number> | undefined): Gauge {
  return new Gauge({
    name,
    help,
    registers: [registry],
    async collect() {
      const reading = read();
      if (reading) this.set(await reading.catch(() => -1));
    },
  });
}

@ApiExcludeController()
@Controller()
export class MetricsController {
  constructor(@Inject(METRICS_REGISTRY) private readonly registry: Registry) {}

  @Get('metrics')
  @Header('content-type', 'text/plain; version=0.0.4; charset=utf-8')
  metrics(): Promise<string> {
    return this.registry.metrics();
  }
}
