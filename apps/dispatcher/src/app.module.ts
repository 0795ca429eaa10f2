import { DynamicModule, Injectable, Logger, Module, OnApplicationBootstrap } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { BusModule, BusService, busOptionsFrom } from '@herald/bus';
import { dataSourceOptions } from '@herald/database';
import { HealthController, METRICS_REGISTRY, MetricsController, READINESS_PROBE, ReadinessProbe, createMetricsRegistry, loggerParams, within } from '@herald/observability';
import { LoggerModule } from 'nestjs-pino';
import { DataSource } from 'typeorm';
import { DISPATCH_SCHEMA, DispatcherConfig } from './config';
import { DeliveriesRpc } from './delivery/deliveries.rpc';
import { DeliveriesService } from './delivery/deliveries.service';
import { DeliverySender } from './delivery/delivery-sender.service';
import { IntakeService } from './intake/intake.service';
import { DISPATCH_MIGRATIONS } from './migrations';
import { OutboxService } from './webhooks/outbox.service';
import { SecretBox, loadSecretKey, previousSecretKeys } from './webhooks/secret-box';
import { WebhooksRpc } from './webhooks/webhooks.rpc';
import { WebhooksService } from './webhooks/webhooks.service';

@Injectable()
class Readiness implements ReadinessProbe {
  constructor(
    private readonly bus: BusService,
    private readonly ds: DataSource,
  ) {}
  async check(): Promise<Record<string, boolean>> {
    return { nats: this.bus.isReady(), postgres: await within(2000, () => this.ds.query('select 1')) };
  }
}

@Injectable()
class StartupNotes implements OnApplicationBootstrap {
  constructor(private readonly config: DispatcherConfig) {}
  onApplicationBootstrap(): void {
    if (!this.config.JOBS_AUTORUN_ENABLED) {
      new Logger('Dispatcher').warn('JOBS_AUTORUN_ENABLED=false: deliveries are recorded as pending and not sent');
    }
  }
}

/** dispatcher: webhooks (RPC), intake (events → deliveries) and the sender. */
@Module({})
export class AppModule {
  static register(config: DispatcherConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        LoggerModule.forRoot(loggerParams('dispatcher', config.LOG_LEVEL)),
        TypeOrmModule.forRoot({ ...dataSourceOptions({ url: config.DATABASE_URL, schema: DISPATCH_SCHEMA, migrations: DISPATCH_MIGRATIONS }), retryAttempts: 3, retryDelay: 1000 }),
        BusModule.forRootAsync({ useFactory: () => busOptionsFrom(config, 'dispatcher') }),
      ],
      controllers: [HealthController, MetricsController],
      providers: [
        { provide: DispatcherConfig, useValue: config },
        { provide: METRICS_REGISTRY, useValue: createMetricsRegistry('dispatcher') },
        { provide: READINESS_PROBE, useClass: Readiness },
        { provide: SecretBox, useFactory: () => new SecretBox(loadSecretKey(config.WEBHOOK_SECRET_KEY, config.DATA_DIR), previousSecretKeys(config.WEBHOOK_SECRET_KEYS)) },
        StartupNotes,
        OutboxService,
        WebhooksService,
        WebhooksRpc,
        IntakeService,
        DeliverySender,
        DeliveriesService,
        DeliveriesRpc,
      ],
    };
  }
}
