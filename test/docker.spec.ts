import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Copy, DockerfileParser, Instruction, JSONInstruction } from 'dockerfile-ast';
import { parse } from 'yaml';
import { IMAGES, ImageName, loadImageConfig, unknownVariables } from './deploy-config';
import { freePort, waitFor } from './stack';

/**
 * No Docker engine runs on these machines, so the images and the compose file are checked
 * statically: what they copy exists, what they run is what `npm run build` produces, what they
 * configure is read (and accepted) by the apps' config classes.
 */
const root = join(__dirname, '..');
const dockerfile = DockerfileParser.parse(readFileSync(join(root, 'docker/Dockerfile'), 'utf8'));

interface Stage {
  name: string;
  base: string;
  instructions: Instruction[];
}

const stages: Stage[] = [];
for (const i of dockerfile.getInstructions()) {
  if (i.getKeyword() === 'FROM') {
    const args = i.getArguments().map((a) => a.getValue());
    stages.push({ name: args[2] ?? args[0], base: args[0], instructions: [] });
  } else {
    stages.at(-1)?.instructions.push(i);
  }
}
const stage = (name: string): Stage => {
  const s = stages.find((x) => x.name === name);
  if (!s) throw new Error(`no stage ${name} in docker/Dockerfile`);
  return s;
};
/** A stage's instructions, its ancestors' first (a target inherits what its base stage did). */
function lineage(name: string): Stage[] {
  const s = stage(name);
  return stages.some((x) => x.name === s.base) ? [...lineage(s.base), s] : [s];
}
const args = (i: Instruction) => i.getArguments().map((a) => a.getValue());
const keyword = (s: Stage, k: string) => s.instructions.filter((i) => i.getKeyword() === k);
/** A COPY as { from: stage or undefined (build context), sources, dest }. */
const copies = (s: Stage) =>
  keyword(s, 'COPY').map((i) => {
    const a = args(i);
    return { from: (i as Copy).getFromFlag()?.getValue() ?? undefined, sources: a.slice(0, -1), dest: a.at(-1)! };
  });
/** The exec-form CMD a target ends up with (its own, or inherited). */
const cmdOf = (name: string): string[] => {
  const cmd = lineage(name)
    .flatMap((s) => keyword(s, 'CMD'))
    .at(-1) as JSONInstruction;
  return cmd.getJSONStrings().map((a) => a.getJSONValue());
};

const ignored = readFileSync(join(root, '.dockerignore'), 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));

describe('docker/Dockerfile', () => {
  it('has one target per service and a migrate target, each running what npm run build produces', () => {
    // The test run's global setup ran scripts/build.mjs, which is what `npm run build` and the build stage run.
    expect(keyword(stage('build'), 'RUN').map(args)).toContainEqual(['node', 'scripts/build.mjs']);
    const expected: Record<ImageName, string> = {
      'api-gateway': 'dist/apps/api-gateway/main.js',
      dispatcher: 'dist/apps/dispatcher/main.js',
      'audit-writer': 'dist/apps/audit-writer/main.js',
      migrate: 'dist/tools/migrate.js',
    };
    for (const image of IMAGES) {
      expect(cmdOf(image)).toEqual(['node', expected[image]]);
      expect(existsSync(join(root, expected[image]))).toBe(true);
      // …and the file is in the image: copied from the build stage's dist.
      const copied = lineage(image)
        .flatMap(copies)
        .filter((c) => c.from === 'build')
        .flatMap((c) => c.sources.map((src) => src.replace(/^\/app\//, '')));
      expect(copied.some((src) => expected[image].startsWith(`${src}/`))).toBe(true);
    }
  });

  it('runtime images carry production dependencies only and run as a non-root user', () => {
    expect(keyword(stage('deps'), 'RUN').map((r) => args(r).join(' '))).toContainEqual(expect.stringMatching(/^npm ci --omit=dev\b/));
    for (const image of IMAGES) {
      const all = lineage(image).flatMap(copies);
      const modules = all.filter((c) => c.dest.endsWith('node_modules'));
      expect(modules).toEqual([{ from: 'deps', sources: ['/app/node_modules'], dest: './node_modules' }]);
      // No dev tooling or sources in a runtime image: only the build's output comes from the build stage.
      for (const c of all.filter((x) => x.from === 'build')) expect(c.sources.every((src) => src.startsWith('/app/dist/'))).toBe(true);
      const user = lineage(image).flatMap((s) => keyword(s, 'USER')).at(-1);
      // Numeric, so Kubernetes can verify runAsNonRoot.
      expect(args(user!)[0]).toMatch(/^[1-9]\d*(:[1-9]\d*)?$/);
      expect(lineage(image).map((s) => s.name)).toContain('runtime');
    }
    const env = keyword(stage('runtime'), 'ENV').flatMap(args);
    expect(env).toContain('NODE_ENV=production');
  });

  it('every COPY from the build context exists and is not excluded by .dockerignore', () => {
    const fromContext = stages.flatMap(copies).filter((c) => c.from === undefined);
    expect(fromContext.length).toBeGreaterThan(3);
    for (const c of fromContext) {
      for (const src of c.sources) {
        expect([src, existsSync(join(root, src))]).toEqual([src, true]);
        // .dockerignore here lists whole names and directories; a source under one of them would be missing.
        expect(ignored.filter((p) => src === p || src.startsWith(`${p}/`) || p === `**/${src}`)).toEqual([]);
      }
    }
    for (const p of ['**/node_modules', 'dist', '.data', '.git']) expect(ignored).toContain(p);
  });

  it('every FROM refers to a stage above it or to a pinned base image', () => {
    const defaults = Object.fromEntries(
      dockerfile.getARGs().map((a) => {
        const [k, v] = args(a)[0].split('=');
        return [k, v];
      }),
    );
    stages.forEach((s, idx) => {
      const base = s.base.replace(/^\$\{(\w+)\}$/, (_, k: string) => defaults[k]);
      const isStage = stages.slice(0, idx).some((x) => x.name === base);
      expect(isStage || /^node:\d+\.\d+[\w.-]*$/.test(base)).toBe(true);
    });
  });
});

describe('docker/compose.yaml', () => {
  const composeDir = join(root, 'docker');
  const compose = parse(readFileSync(join(composeDir, 'compose.yaml'), 'utf8'), { merge: true }) as {
    services: Record<string, { build?: { context: string; dockerfile: string; target: string }; environment?: Record<string, string>; depends_on?: Record<string, unknown>; volumes?: string[]; command?: string[]; image?: string }>;
    volumes: Record<string, unknown>;
  };
  const services = compose.services;
  /** Compose interpolation of the forms used in the file: ${VAR:-default}, with the variables unset. */
  const interpolate = (v: string) => String(v).replace(/\$\{\w+:-([^}]*)\}/g, '$1');

  it('runs NATS with JetStream, Postgres, the migrations, the three services and a receiver', () => {
    expect(Object.keys(services).sort()).toEqual(['api-gateway', 'audit-writer', 'dispatcher', 'migrate', 'nats', 'postgres', 'receiver']);
    expect(services.postgres.image).toMatch(/^postgres:/);
  });

  it('runs NATS with the shipped docker/nats/nats.conf, and each service connects as its own user', () => {
    const nats = services.nats;
    const configPath = nats.command![nats.command!.indexOf('-c') + 1];
    // The directory is mounted, so the users file nats.conf includes is there too.
    const mount = nats.volumes!.find((v) => configPath.startsWith(`${v.split(':')[1]}/`))!;
    expect(join(resolve(composeDir, mount.split(':')[0]), configPath.slice(mount.split(':')[1].length))).toBe(join(root, 'docker/nats/nats.conf'));
    expect(nats.command).toEqual(expect.arrayContaining(['-sd', '/data']));
    expect(readFileSync(join(root, 'docker/nats/nats.conf'), 'utf8')).toMatch(/^jetstream: enabled$/m);
    const serverEnv = Object.fromEntries(Object.entries(nats.environment ?? {}).map(([k, v]) => [k, interpolate(v)]));
    expect(Object.keys(serverEnv).sort()).toEqual(['NATS_API_GATEWAY_PASSWORD', 'NATS_AUDIT_WRITER_PASSWORD', 'NATS_DISPATCHER_PASSWORD', 'NATS_PUBLISHER_PASSWORD']);
    // The file is valid with exactly the environment compose gives the server (a missing password would stop it).
    const check = spawnSync('nats-server', ['-c', join(root, 'docker/nats/nats.conf'), '-t'], { env: { PATH: process.env.PATH ?? '', ...serverEnv }, encoding: 'utf8' });
    expect([check.status, check.stderr]).toEqual([0, expect.stringContaining('is valid')]);
    for (const name of ['api-gateway', 'dispatcher', 'audit-writer'] as const) {
      const env = services[name].environment!;
      expect(env.NATS_USER).toBe(name);
      expect(interpolate(env.NATS_PASSWORD)).toBe(serverEnv[`NATS_${name.replace('-', '_').toUpperCase()}_PASSWORD`]);
    }
  });

  it('builds each Herald service from an existing Dockerfile target', () => {
    for (const image of IMAGES) {
      const build = services[image].build!;
      const context = resolve(composeDir, build.context);
      expect(context).toBe(root);
      expect(existsSync(join(context, build.dockerfile))).toBe(true);
      expect(build.target).toBe(image);
      expect(stages.map((s) => s.name)).toContain(build.target);
    }
  });

  it('gives each service only variables its config class reads, with values it accepts', () => {
    for (const image of IMAGES) {
      const env = Object.fromEntries(Object.entries(services[image].environment ?? {}).map(([k, v]) => [k, interpolate(v)]));
      expect([image, unknownVariables(image, env)]).toEqual([image, []]);
      expect(() => loadImageConfig(image, env)).not.toThrow();
    }
    expect(services.migrate.environment?.DATABASE_URL).toBeDefined();
  });

  it('starts the services after the migrations succeeded, and every reference resolves', () => {
    for (const name of ['dispatcher', 'audit-writer']) {
      expect(services[name].depends_on).toMatchObject({ migrate: { condition: 'service_completed_successfully' }, nats: { condition: 'service_healthy' } });
    }
    for (const [, s] of Object.entries(services)) {
      for (const dep of Object.keys(s.depends_on ?? {})) expect(Object.keys(services)).toContain(dep);
      for (const v of s.volumes ?? []) {
        const [source] = v.split(':');
        if (source.startsWith('.')) expect(existsSync(resolve(composeDir, source))).toBe(true);
        else expect(Object.keys(compose.volumes)).toContain(source);
      }
    }
  });

  describe('the example receiver', () => {
    let child: ChildProcess;
    let url: string;
    const secret = 'whsec_compose_example_secret';

    beforeAll(async () => {
      const port = await freePort();
      const file = services.receiver.command!.at(-1)!.replace('/receiver/', join(composeDir, 'receiver/'));
      child = spawn(process.execPath, [file], { env: { PORT: String(port), RECEIVER_SECRET: secret }, stdio: 'ignore' });
      url = `http://127.0.0.1:${port}`;
      await waitFor(async () => (await fetch(`${url}/healthz`)).ok, 10_000, 'the receiver');
    });

    afterAll(() => {
      child?.kill('SIGTERM');
    });

    it('accepts a delivery signed with its secret and refuses a bad signature', async () => {
      const body = JSON.stringify({ id: 'evt_1', type: 'orders.create', timestamp: new Date().toISOString(), data: { id: 'o1' } });
      const sign = (key: string) => createHmac('sha256', key).update(body).digest('hex');
      const post = (signature: string) =>
        fetch(`${url}/hooks`, { method: 'POST', body, headers: { 'content-type': 'application/json', 'x-commerce-signature': signature, 'x-commerce-event-id': 'evt_1' } });
      expect((await post(sign(secret))).status).toBe(204);
      expect((await post(sign('whsec_someone_else'))).status).toBe(401);
      expect((await post('zz')).status).toBe(401);
    });
  });
});
