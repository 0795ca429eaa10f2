import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DockerfileParser } from 'dockerfile-ast';
import { parseAllDocuments } from 'yaml';
import { BlockList, isIP } from 'node:net';
import { BLOCKED_RANGES } from '../apps/dispatcher/src/webhooks/url-policy';
import { ImageName, loadImageConfig, unknownVariables } from './deploy-config';

/**
 * The kustomize overlays, rendered with `kubectl kustomize` and checked offline: every object
 * against the Kubernetes API schemas (kubernetes-models), then what an operator relies on.
 */
const root = join(__dirname, '..');

/* eslint-disable @typescript-eslint/no-explicit-any -- rendered manifests are untyped YAML */
type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; labels?: Record<string, string> }; [k: string]: any };

function render(dir: string): K8sObject[] {
  const out = execFileSync('kubectl', ['kustomize', join(root, dir)], { encoding: 'utf8' });
  return parseAllDocuments(out)
    .map((d) => d.toJS() as K8sObject)
    .filter(Boolean);
}

const SERVICES = ['api-gateway', 'dispatcher', 'audit-writer'] as const;
const dockerTargets = DockerfileParser.parse(readFileSync(join(root, 'docker/Dockerfile'), 'utf8'))
  .getFROMs()
  .map((f) => f.getBuildStage());

/** A valid stand-in for a Secret the production overlay leaves to the operator. */
const PLACEHOLDER_SECRETS: Record<string, string> = {
  DATABASE_URL: 'postgres://herald:secret@postgres.example:5432/herald',
  WEBHOOK_SECRET_KEY: Buffer.alloc(32, 7).toString('base64'),
  NATS_PASSWORD: 'a-nats-password',
};

function matches(selector: any, labels: Record<string, string>): boolean {
  const byLabels = Object.entries(selector?.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
  const byExpressions = (selector?.matchExpressions ?? []).every((e: any) => (e.operator === 'In' ? e.values.includes(labels[e.key]) : e.operator === 'Exists' ? e.key in labels : true));
  return byLabels && byExpressions;
}

describe.each(['development', 'production'])('k8s/overlays/%s', (overlay) => {
  const objects = render(`k8s/overlays/${overlay}`);
  const all = (kind: string) => objects.filter((o) => o.kind === kind);
  const one = (kind: string, name: string) => {
    const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
    if (!found) throw new Error(`${kind}/${name} is not rendered`);
    return found;
  };
  const configMap = (name: string) => objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name.replace(/-[a-z0-9]{10}$/, '') === name)!;
  const deployment = (name: string) => one('Deployment', name);
  const podOf = (o: K8sObject) => (o.kind === 'CronJob' ? o.spec.jobTemplate.spec.template : o.spec.template);
  const containerOf = (o: K8sObject) => podOf(o).spec.containers[0];

  /** The environment a container starts with: its ConfigMaps, then its env (Secrets read from the render, or placeholders). */
  function environment(o: K8sObject): Record<string, string> {
    const c = containerOf(o);
    const env: Record<string, string> = {};
    for (const from of c.envFrom ?? []) Object.assign(env, one('ConfigMap', from.configMapRef.name).data);
    for (const e of c.env ?? []) {
      if (e.value !== undefined) env[e.name] = e.value;
      const ref = e.valueFrom?.secretKeyRef;
      if (ref) {
        const secret = objects.find((x) => x.kind === 'Secret' && x.metadata.name === ref.name);
        const value = secret ? secret.data[ref.key] && Buffer.from(secret.data[ref.key], 'base64').toString() : PLACEHOLDER_SECRETS[e.name];
        if (value !== undefined) env[e.name] = value;
        else expect([e.name, ref.optional]).toEqual([e.name, true]);
      }
    }
    return env;
  }

  it('renders objects that are valid against the Kubernetes API schemas', () => {
    const r = spawnSync(process.execPath, [join(__dirname, 'k8s-validate.mjs')], { input: JSON.stringify(objects), encoding: 'utf8', cwd: root });
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual([]);
    expect(new Set(objects.map((o) => o.kind))).toEqual(
      new Set(['ConfigMap', 'Deployment', 'Service', 'Ingress', 'Job', 'CronJob', 'HorizontalPodAutoscaler', 'PodDisruptionBudget', 'NetworkPolicy', ...(overlay === 'development' ? ['Secret'] : [])]),
    );
    for (const o of objects) expect([o.kind, o.metadata.name, o.metadata.labels?.['app.kubernetes.io/part-of']]).toEqual([o.kind, o.metadata.name, 'herald']);
  });

  it.each(SERVICES)('%s: probes, resources, a locked-down pod, and an image built by the Dockerfile', (name) => {
    const d = deployment(name);
    const pod = podOf(d).spec;
    const c = containerOf(d);
    const port = Number(environment(d).PORT);
    expect(c.ports).toEqual([{ name: 'http', containerPort: port }]);
    expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'http' });
    expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
    for (const kind of ['requests', 'limits']) expect(Object.keys(c.resources[kind]).sort()).toEqual(['cpu', 'memory']);
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    expect(pod.securityContext.runAsUser).toBeGreaterThan(0);
    expect(c.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    expect(pod.automountServiceAccountToken).toBe(false);
    // The image is the Dockerfile target of the same name, and keeps its CMD.
    const repository = c.image.split(':')[0].split('/').at(-1);
    expect(repository).toBe(name);
    expect(dockerTargets).toContain(repository);
    expect(c.command).toBeUndefined();
    // The grace period covers the preStop pause and the app's own shutdown deadline.
    const preStop = Number(c.lifecycle.preStop.exec.command[1]);
    expect(pod.terminationGracePeriodSeconds * 1000).toBeGreaterThan(preStop * 1000 + Number(environment(d).SHUTDOWN_TIMEOUT_MS));
  });

  it.each(SERVICES)('%s: its settings are variables its config class reads, and it accepts them', (name) => {
    const env = environment(deployment(name));
    expect(unknownVariables(name, env)).toEqual([]);
    const config = loadImageConfig(name, env) as { NODE_ENV: string };
    expect(config.NODE_ENV).toBe(overlay === 'production' ? 'production' : 'development');
  });

  it('takes DATABASE_URL, WEBHOOK_SECRET_KEY and the API keys from Secrets, never from ConfigMaps', () => {
    const secretRef = (o: K8sObject, variable: string) => containerOf(o).env?.find((e: any) => e.name === variable)?.valueFrom?.secretKeyRef;
    const base = (n: string) => n.replace(/-[a-z0-9]{10}$/, '');
    for (const o of [deployment('dispatcher'), deployment('audit-writer'), one('Job', 'herald-migrate'), one('CronJob', 'herald-audit-prune')]) {
      expect(base(secretRef(o, 'DATABASE_URL').name)).toBe('herald-database');
    }
    expect(base(secretRef(deployment('dispatcher'), 'WEBHOOK_SECRET_KEY').name)).toBe('herald-webhook-secret-key');
    // Earlier keys for a rotation live beside the current one, and only while rotating.
    expect(secretRef(deployment('dispatcher'), 'WEBHOOK_SECRET_KEYS')).toMatchObject({ key: 'WEBHOOK_SECRET_KEYS', optional: true });
    expect(secretRef(deployment('api-gateway'), 'DATABASE_URL')).toBeUndefined();

    // The gateway reads its keys from a file in a mounted Secret: mounted as a directory (no subPath),
    // so a changed Secret reaches the running pod and the gateway reloads it without a restart.
    const gw = deployment('api-gateway');
    const keysFile = environment(gw).API_KEYS_FILE;
    const mount = containerOf(gw).volumeMounts.find((m: any) => keysFile.startsWith(`${m.mountPath}/`));
    expect(mount).toBeDefined();
    expect(mount.subPath).toBeUndefined();
    const volume = podOf(gw).spec.volumes.find((v: any) => v.name === mount.name);
    expect(base(volume.secret.secretName)).toBe('herald-api-keys');

    for (const cm of all('ConfigMap')) {
      for (const k of ['DATABASE_URL', 'WEBHOOK_SECRET_KEY', 'WEBHOOK_SECRET_KEYS', 'API_KEYS', 'NATS_PASSWORD', 'NATS_TOKEN']) expect(cm.data).not.toHaveProperty(k);
    }
    if (overlay === 'development') {
      // Every Secret a pod refers to is rendered, with the key it reads.
      for (const o of [...all('Deployment'), ...all('Job'), ...all('CronJob')]) {
        for (const e of containerOf(o).env ?? []) {
          const ref = e.valueFrom?.secretKeyRef;
          if (ref && !ref.optional) expect(one('Secret', ref.name).data).toHaveProperty(ref.key);
        }
      }
      expect(JSON.parse(Buffer.from(one('Secret', volume.secret.secretName).data['keys.json'], 'base64').toString())).toEqual([]);
    } else {
      // Production Secrets are the operator's (docs/operations.md); nothing secret is in the repository.
      expect(all('Secret')).toEqual([]);
    }
  });

  it('connects each service (and the audit-prune job) to NATS as its own user, the password from the Secret herald-nats', () => {
    const users: [K8sObject, string][] = [
      [deployment('api-gateway'), 'api-gateway'],
      [deployment('dispatcher'), 'dispatcher'],
      [deployment('audit-writer'), 'audit-writer'],
      [one('CronJob', 'herald-audit-prune'), 'audit-writer'],
    ];
    // The variables the shipped server config reads its passwords from.
    const serverVariables = [...readFileSync(join(root, 'docker/nats/herald-users.conf'), 'utf8').matchAll(/password:\s*\$(\w+)/g)].map((m) => m[1]);
    expect(serverVariables.sort()).toEqual(['NATS_API_GATEWAY_PASSWORD', 'NATS_AUDIT_WRITER_PASSWORD', 'NATS_DISPATCHER_PASSWORD', 'NATS_PUBLISHER_PASSWORD']);
    for (const [o, user] of users) {
      expect(environment(o).NATS_USER).toBe(user);
      const ref = containerOf(o).env.find((e: any) => e.name === 'NATS_PASSWORD').valueFrom.secretKeyRef;
      expect([ref.name.replace(/-[a-z0-9]{10}$/, ''), ref.key, ref.optional]).toEqual(['herald-nats', `NATS_${user.replace('-', '_').toUpperCase()}_PASSWORD`, undefined]);
      expect(serverVariables).toContain(ref.key);
    }
    if (overlay === 'development') expect(Object.keys(one('Secret', all('Secret').find((x) => x.metadata.name.startsWith('herald-nats'))!.metadata.name).data).sort()).toEqual([...serverVariables].sort());
  });

  it('routes only /api from outside the cluster: /metrics, /healthz and /readyz are not exposed', () => {
    const ingresses = all('Ingress');
    expect(ingresses).toHaveLength(1);
    const paths = ingresses.flatMap((i) => i.spec.rules.flatMap((r: any) => r.http.paths));
    expect(paths).toEqual([{ path: '/api', pathType: 'Prefix', backend: { service: { name: 'api-gateway', port: { name: 'http' } } } }]);
    expect(ingresses[0].spec.defaultBackend).toBeUndefined();
    // The backend is the gateway's Service, and its named port exists.
    expect(one('Service', 'api-gateway').spec.ports.map((p: any) => p.name)).toContain('http');
    // Prefix matching is by whole path elements, so nothing but /api and /api/… is routed.
    const routed = (url: string) => paths.some((p: any) => url === p.path || url.startsWith(`${p.path}/`));
    for (const url of ['/metrics', '/healthz', '/readyz', '/', '/apix']) expect([url, routed(url)]).toEqual([url, false]);
    for (const url of ['/api/webhooks', '/api/docs/ui']) expect(routed(url)).toBe(true);
    // And no Service is exposed past the cluster some other way.
    for (const svc of all('Service')) expect(svc.spec.type ?? 'ClusterIP').toBe('ClusterIP');
  });

  it('has a Service, an autoscaler and a disruption budget for each service', () => {
    for (const name of SERVICES) {
      const labels = podOf(deployment(name)).metadata.labels;
      const svc = one('Service', name);
      expect(matches({ matchLabels: svc.spec.selector }, labels)).toBe(true);
      expect(svc.spec.ports[0].targetPort).toBe('http');
      const hpa = one('HorizontalPodAutoscaler', name);
      expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name });
      expect(hpa.spec.minReplicas).toBeGreaterThanOrEqual(1);
      expect(hpa.spec.maxReplicas).toBeGreaterThan(hpa.spec.minReplicas);
      expect(all('PodDisruptionBudget').filter((p) => matches(p.spec.selector, labels))).toHaveLength(1);
    }
  });

  it('runs the migrations in a Job from the migrate image, locked down like the services', () => {
    const job = one('Job', 'herald-migrate');
    const pod = podOf(job).spec;
    const c = containerOf(job);
    expect(c.image.split(':')[0].split('/').at(-1)).toBe('migrate');
    expect(dockerTargets).toContain('migrate');
    expect(c.command).toEqual(['node', 'dist/tools/migrate.js']);
    expect(['Never', 'OnFailure']).toContain(pod.restartPolicy);
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    expect(c.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true });
    expect(unknownVariables('migrate' as ImageName, environment(job))).toEqual([]);
    expect(() => loadImageConfig('migrate', environment(job))).not.toThrow();
  });

  it("the deployment's migration step (-l 'app.kubernetes.io/component in (config,migrate)') applies the Job and all it reads", () => {
    const step = objects.filter((o) => ['config', 'migrate'].includes(o.metadata.labels?.['app.kubernetes.io/component'] ?? ''));
    expect(step.filter((o) => !['ConfigMap', 'Secret'].includes(o.kind)).map((o) => `${o.kind}/${o.metadata.name}`)).toEqual(['Job/herald-migrate']);
    const job = containerOf(one('Job', 'herald-migrate'));
    for (const from of job.envFrom) expect(step.map((o) => o.metadata.name)).toContain(from.configMapRef.name);
    if (overlay === 'development') {
      for (const e of job.env) expect(step.map((o) => o.metadata.name)).toContain(e.valueFrom.secretKeyRef.name);
    }
  });

  it('prunes audit history with a CronJob that ships suspended and runs the built audit-prune tool', () => {
    const cron = one('CronJob', 'herald-audit-prune');
    expect(cron.spec.suspend).toBe(true);
    expect(cron.spec.concurrencyPolicy).toBe('Forbid');
    const pod = podOf(cron).spec;
    const c = containerOf(cron);
    expect(c.image.split(':')[0].split('/').at(-1)).toBe('migrate');
    const script = c.command.join(' ');
    expect(script).toContain('node dist/tools/audit-prune.js --before ');
    expect(existsSync(join(root, 'dist/tools/audit-prune.js'))).toBe(true);
    // The date it passes: the first day of the month 13 months back, as GNU date (in the image) computes it.
    const dateExpr = /--before "\$\((date .*)\)"/.exec(script)![1];
    const before = execFileSync('sh', ['-c', dateExpr], { encoding: 'utf8' }).trim();
    const now = new Date();
    expect(before).toBe(new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 13, 1)).toISOString().slice(0, 10));
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    expect(c.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true });
    // The tool reads the audit-writer's configuration.
    expect(unknownVariables('audit-writer', environment(cron))).toEqual([]);
    expect(() => loadImageConfig('audit-writer', environment(cron))).not.toThrow();
  });

  describe('network policies', () => {
    const policies = all('NetworkPolicy');
    const podLabels: Record<string, Record<string, string>> = {
      ...Object.fromEntries(SERVICES.map((s) => [s, podOf(deployment(s)).metadata.labels])),
      migrate: podOf(one('Job', 'herald-migrate')).metadata.labels,
      'audit-prune': podOf(one('CronJob', 'herald-audit-prune')).metadata.labels,
    };
    const selecting = (pod: string, type: 'Ingress' | 'Egress') => policies.filter((p) => p.spec.policyTypes.includes(type) && matches(p.spec.podSelector, podLabels[pod]));
    const rules = (pod: string, type: 'Ingress' | 'Egress') => selecting(pod, type).flatMap((p) => p.spec[type.toLowerCase()] ?? []);
    const peers = (rule: any) => rule.from ?? rule.to ?? [];
    const ports = (rule: any) => (rule.ports ?? []).map((p: any) => p.port);

    it('deny everything of Herald by default, in and out', () => {
      for (const pod of Object.keys(podLabels)) {
        expect(selecting(pod, 'Ingress').length).toBeGreaterThan(0);
        expect(selecting(pod, 'Egress').length).toBeGreaterThan(0);
      }
    });

    it('let only the api-gateway take ingress (the others: metrics scrapes from the monitoring namespace)', () => {
      const open = (pod: string) => rules(pod, 'Ingress').filter((r) => peers(r).length === 0);
      expect(open('api-gateway').map(ports)).toEqual([[4000]]);
      for (const pod of ['dispatcher', 'audit-writer', 'migrate', 'audit-prune']) expect(open(pod)).toEqual([]);
      for (const pod of ['dispatcher', 'audit-writer']) {
        for (const r of rules(pod, 'Ingress')) {
          expect(peers(r)).toEqual([{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }]);
        }
      }
      expect(rules('migrate', 'Ingress')).toEqual([]);
      expect(rules('audit-prune', 'Ingress')).toEqual([]);
    });

    it('let every service reach DNS and NATS, the Postgres owners reach Postgres, and only the dispatcher the internet', () => {
      const reaches = (pod: string, name: string, port: number) =>
        rules(pod, 'Egress').some((r) => ports(r).includes(port) && peers(r).some((p: any) => p.podSelector?.matchLabels?.['app.kubernetes.io/name'] === name));
      const internet = (pod: string) => rules(pod, 'Egress').filter((r) => peers(r).some((p: any) => p.ipBlock));
      for (const pod of Object.keys(podLabels)) {
        expect(rules(pod, 'Egress').filter((r) => peers(r).length === 0)).toEqual([]);
        expect(rules(pod, 'Egress').some((r) => ports(r).includes(53))).toBe(true);
        expect(reaches(pod, 'nats', 4222)).toBe(true);
        expect(reaches(pod, 'postgresql', 5432)).toBe(pod !== 'api-gateway');
        expect(internet(pod).length).toBe(pod === 'dispatcher' ? 1 : 0);
      }
      const v4 = peers(internet('dispatcher')[0]).find((p: any) => p.ipBlock.cidr === '0.0.0.0/0').ipBlock;
      for (const closed of ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '169.254.0.0/16', '127.0.0.0/8']) expect(v4.except).toContain(closed);
    });

    it("close to the dispatcher every range its URL policy refuses, in IPv4 and IPv6", () => {
      const blocks = peers(rules('dispatcher', 'Egress').find((r) => peers(r).some((p: any) => p.ipBlock))).map((p: any) => p.ipBlock);
      const closedBy = (r: (typeof BLOCKED_RANGES)[number]) =>
        blocks.flatMap((b: any) => b.except ?? []).find((cidr: string) => {
          const [net, prefix] = cidr.split('/');
          if ((isIP(net) === 6 ? 'ipv6' : 'ipv4') !== r.family || Number(prefix) > r.prefix) return false;
          const list = new BlockList();
          list.addSubnet(net, Number(prefix), r.family);
          return list.check(r.net, r.family);
        });
      const open = BLOCKED_RANGES.filter((r) => !closedBy(r)).map((r) => `${r.net}/${r.prefix}`);
      expect(open).toEqual([]);
      expect(blocks.map((b: any) => b.cidr).sort()).toEqual(['0.0.0.0/0', '::/0']);
    });
  });

  it(overlay === 'production' ? 'runs the events stream at 3 replicas on a NATS cluster, in production mode' : 'runs in development mode with the stream at 1 replica', () => {
    const common = configMap('herald-common').data;
    if (overlay === 'production') {
      expect(common).toMatchObject({ NODE_ENV: 'production', EVENTS_REPLICAS: '3' });
      expect(common.NATS_URL.split(',')).toHaveLength(3);
    } else {
      expect(common).toMatchObject({ NODE_ENV: 'development', EVENTS_REPLICAS: '1' });
    }
  });
});

describe('k8s/nats/values.yaml (the official NATS Helm chart running Herald’s users)', () => {
  /* eslint-disable @typescript-eslint/no-explicit-any -- Helm values are untyped YAML */
  const values = parseAllDocuments(readFileSync(join(root, 'k8s/nats/values.yaml'), 'utf8'))[0].toJS() as any;
  const users = readFileSync(join(root, 'docker/nats/herald-users.conf'), 'utf8');

  it('runs a 3-node JetStream cluster and includes docker/nats/herald-users.conf', () => {
    expect(values.config.jetstream.enabled).toBe(true);
    expect(values.config.cluster).toMatchObject({ enabled: true, replicas: 3 });
    expect(Object.entries(values.config.merge).filter(([k]) => k.endsWith('$include'))).toEqual([['00$include', 'herald-users.conf']]);
    // The file the documented --set-file puts into the chart's ConfigMap under that name.
    expect(readFileSync(join(root, 'k8s/nats/values.yaml'), 'utf8')).toContain("--set-file 'configMap.merge.data.herald-users\\.conf=docker/nats/herald-users.conf'");
  });

  it('gives the server every password variable the users file reads, from the Secret herald-nats', () => {
    const variables = [...users.matchAll(/password:\s*\$(\w+)/g)].map((m) => m[1]).sort();
    expect(Object.keys(values.container.env).sort()).toEqual(variables);
    for (const v of variables) expect(values.container.env[v].valueFrom.secretKeyRef).toEqual({ name: 'herald-nats', key: v });
  });
});
