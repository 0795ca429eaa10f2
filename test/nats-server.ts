import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, waitFor } from './stack';

/**
 * A nats-server of a test's own, on a free loopback port with a temporary store, started from a
 * config file (such as the shipped docker/nats/nats.conf) with `env` as the server's environment.
 */
export class NatsServerProcess {
  output = '';

  private constructor(
    readonly port: number,
    private readonly scheme: 'nats' | 'tls',
    private readonly dir: string,
    private readonly child: ChildProcess,
    private readonly exited: Promise<number | null>,
  ) {}

  static async start(configFile: string, env: Record<string, string>, scheme: 'nats' | 'tls' = 'nats'): Promise<NatsServerProcess> {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'herald-nats-'));
    // -a/-p/-sd on the command line override the file's port and store, as an operator would.
    const child = spawn('nats-server', ['-c', configFile, '-a', '127.0.0.1', '-p', String(port), '-sd', dir], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const server = new NatsServerProcess(port, scheme, dir, child, exited);
    for (const s of [child.stdout!, child.stderr!]) s.on('data', (d: Buffer) => (server.output += d.toString()));
    await waitFor(() => server.output.includes('Server is ready') || child.exitCode !== null, 10_000, `nats-server to start\n${server.output}`);
    if (child.exitCode !== null) throw new Error(`nats-server exited with ${child.exitCode}:\n${server.output}`);
    return server;
  }

  get url(): string {
    return `${this.scheme}://127.0.0.1:${this.port}`;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null) {
      this.child.kill('SIGTERM');
      await this.exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
