import { DynamicModule, Injectable, Logger, Module, OnApplicationShutdown, ValidationPipe } from '@nestjs/common';
import { APP_FILTER, APP_GUARD, APP_PIPE } from '@nestjs/core';
import { BusModule, BusService, busOptionsFrom } from '@herald/bus';
import { ConfigError } from '@herald/config';
import { HeraldError, toFieldErrors } from '@herald/contracts';
import { HealthController, METRICS_REGISTRY, MetricsController, READINESS_PROBE, ReadinessProbe, createMetricsRegistry } from '@herald/observability';
import { LoggerModule, Params } from 'nestjs-pino';
import { ApiKeyStore, parseKeys } from './auth/api-keys';
import { AuthGuard } from './auth/auth.guard';
import { RateLimiter } from './auth/rate-limit';
import { AuditController } from './audit/audit.controller';
import { DeliveriesController } from './deliveries/deliveries.controller';
import { GatewayConfig } from './config';
import { OpenApiController } from './docs/openapi';
import { ErrorFilter } from './errors/error.filter';
import { GatewayRpc } from './rpc/gateway-rpc.service';
import { WebhooksController } from './webhooks/webhooks.controller';

@Injectable()
class Readiness implements ReadinessProbe {
  constructor(private readonly bus: BusService) {}
  async check(): Promise<Record<string, boolean>> {
    return { nats: this.bus.isReady() };
  }
}

@Injectable()
class KeysLifecycle implements OnApplicationShutdown {
  constructor(private readonly keys: ApiKeyStore) {}
  onApplicationShutdown(): void {
    this.keys.close();
  }
}

export function createKeyStore(config: GatewayConfig): ApiKeyStore {
  const logger = new Logger('ApiKeys');
  // In production a key equal to dev-staff-key would re-open the development key: refused at start
  // and on every reload of the file.
  const store = new ApiKeyStore(config.devStaffKeyEnabled, (err) => logger.error({ err: err.message }, 'Key file reload failed; previous keys stay in force'), config.isProduction);
  const variable = config.API_KEYS_FILE ? 'API_KEYS_FILE' : 'API_KEYS';
  try {
    if (config.API_KEYS_FILE) store.loadFile(config.API_KEYS_FILE);
    else store.load(config.API_KEYS ? parseKeys(config.API_KEYS, 'API_KEYS') : []);
  } catch (err) {
    throw new ConfigError([{ variable, message: (err as Error).message }]);
  }
  return store;
}

/** api-gateway: HTTP in, keys and permissions, validation, then NATS request/reply to the owning service. */
@Module({})
export class AppModule {
  static register(config: GatewayConfig, keys: ApiKeyStore, logging: Params): DynamicModule {
    return {
      module: AppModule,
      imports: [
        LoggerModule.forRoot(logging),
        BusModule.forRootAsync({ useFactory: () => ({ ...busOptionsFrom(config, 'api-gateway'), ensureStream: false }) }),
      ],
      controllers: [HealthController, MetricsController, OpenApiController, WebhooksController, DeliveriesController, AuditController],
      providers: [
        { provide: GatewayConfig, useValue: config },
        { provide: ApiKeyStore, useValue: keys },
        { provide: RateLimiter, useValue: new RateLimiter(config.RATE_LIMIT_MAX, config.RATE_LIMIT_WINDOW_MS) },
        { provide: METRICS_REGISTRY, useValue: createMetricsRegistry('api-gateway') },
        { provide: READINESS_PROBE, useClass: Readiness },
        { provide: APP_GUARD, useClass: AuthGuard },
        { provide: APP_FILTER, useClass: ErrorFilter },
        {
          provide: APP_PIPE,
          useValue: new ValidationPipe({
            transform: true,
            whitelist: true,
            forbidNonWhitelisted: true,
            forbidUnknownValues: false,
            validationError: { target: false, value: false },
            exceptionFactory: (errors) => HeraldError.validation(toFieldErrors(errors)),
          }),
        },
        KeysLifecycle,
        GatewayRpc,
      ],
    };
  }
}
