import 'reflect-metadata';
import { loadConfig } from '@herald/config';
import { runMain } from '@herald/observability';
import { GatewayConfig } from './config';
import { startGateway } from './gateway';

runMain('api-gateway', async () => {
  const config = loadConfig(GatewayConfig);
  return { app: await startGateway(config), shutdownTimeoutMs: config.SHUTDOWN_TIMEOUT_MS };
});
