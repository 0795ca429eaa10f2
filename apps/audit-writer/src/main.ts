import 'reflect-metadata';
import { loadConfig } from '@herald/config';
import { runMain, startApp } from '@herald/observability';
import { AppModule } from './app.module';
import { AuditWriterConfig } from './config';

runMain('audit-writer', async () => {
  const config = loadConfig(AuditWriterConfig);
  return { app: await startApp(AppModule.register(config), { port: config.PORT }), shutdownTimeoutMs: config.SHUTDOWN_TIMEOUT_MS };
});
