import { DynamicModule, Injectable, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { BusModule, BusService, busOptionsFrom } from '@herald/bus';
import { dataSourceOptions } from '@herald/database';
import { HealthController, METRICS_REGISTRY, MetricsController, READINESS_PROBE, ReadinessProbe, createMetricsRegistry, loggerParams, within } from '@herald/observability';
import { LoggerModule } from 'nestjs-pino';
import { DataSource } from 'typeorm';
import { AUDIT_SCHEMA, AuditWriterConfig } from './config';
import { IngestService } from './ingest/ingest.service';
import { AUDIT_MIGRATIONS } from './migrations';
import { AuditQueryService } from './query/audit-query.service';
import { AuditRpc } from './query/audit.rpc';
import { AuditVerifyService } from './verify/audit-verify.service';

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

/** audit-writer: events → audit entries (ingest), and the audit queries over NATS (query). */
@Module({})
export class AppModule {
  static register(config: AuditWriterConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        LoggerModule.forRoot(loggerParams('audit-writer', config.LOG_LEVEL)),
        // The generic plan for every audit page (AuditQueryService.prepared says why); its only other
        // cached plans are PL/pgSQL's, and its functions run dynamic SQL or none.
        TypeOrmModule.forRoot({
          ...dataSourceOptions({ url: config.DATABASE_URL, schema: AUDIT_SCHEMA, migrations: AUDIT_MIGRATIONS, planCacheMode: 'force_generic_plan' }),
          retryAttempts: 3,
          retryDelay: 1000,
        }),
        BusModule.forRootAsync({ useFactory: () => busOptionsFrom(config, 'audit-writer') }),
      ],
      controllers: [HealthController, MetricsController],
      providers: [
        { provide: AuditWriterConfig, useValue: config },
        { provide: METRICS_REGISTRY, useValue: createMetricsRegistry('audit-writer') },
        { provide: READINESS_PROBE, useClass: Readiness },
        IngestService,
        AuditQueryService,
        AuditVerifyService,
        AuditRpc,
      ],
    };
  }
}
