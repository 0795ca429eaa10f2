import 'reflect-metadata';
import { loadConfig } from '@herald/config';
import { runMain, startApp } from '@herald/observability';
import { AppModule } from './app.module';
import { DispatcherConfig } from './config';

runMain('dispatcher', async () => {
  const config = loadConfig(DispatcherConfig);
  return { app: await startApp(AppModule.register(config), { port: config.PORT }), shutdownTimeoutMs: config.SHUTDOWN_TIMEOUT_MS };
});
