#!/usr/bin/env node
// Builds every app to dist/apps/<app>/main.js and the tools to dist/tools/<tool>.js:
// tsc type-checks and emits (it, unlike esbuild, emits the decorator metadata Nest relies on),
// then esbuild bundles each entry with our libs inlined and npm packages left in node_modules.
// Usage: node scripts/build.mjs [--app <name>] [--if-stale]
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const only = args.includes('--app') ? args[args.indexOf('--app') + 1] : undefined;
const out = join(root, 'dist/out-tsc');

const apps = ['api-gateway', 'dispatcher', 'audit-writer'];
const tools = existsSync(join(root, 'tools')) ? readdirSync(join(root, 'tools')).filter((f) => f.endsWith('.ts') && !f.includes('.spec.')).map((f) => f.slice(0, -3)) : [];
const entries = [
  ...apps.filter((a) => !only || a === only).map((a) => ({ in: `apps/${a}/src/main.js`, out: `apps/${a}/main` })),
  ...(only ? [] : tools.map((t) => ({ in: `tools/${t}.js`, out: `tools/${t}` }))),
];

function newest(dir) {
  let t = 0;
  if (!existsSync(dir)) return t;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

if (args.includes('--if-stale')) {
  const built = Math.min(...entries.map((e) => (existsSync(join(root, 'dist', `${e.out}.js`)) ? statSync(join(root, 'dist', `${e.out}.js`)).mtimeMs : 0)));
  const sources = Math.max(...['apps', 'libs', 'tools'].map((d) => newest(join(root, d))));
  if (built > sources) process.exit(0);
}

execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });

const libs = readdirSync(join(root, 'libs'));
await build({
  absWorkingDir: out,
  entryPoints: entries,
  outdir: join(root, 'dist'),
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  packages: 'external',
  keepNames: true,
  sourcemap: true,
  logLevel: 'warning',
  alias: Object.fromEntries(libs.map((l) => [`@herald/${l}`, join(out, `libs/${l}/src/index.js`)])),
});
console.log(`built ${entries.map((e) => `dist/${e.out}.js`).join(', ')}`);
