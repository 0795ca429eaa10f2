// NestJS 12 ships ES modules only. Node 20 loads them with require(), but Jest's module runtime
// cannot before Node 24.9. So, once per installed version, Jest gets a CommonJS copy of each
// @nestjs package (compiled with swc, as our own sources are) and resolves @nestjs/* to it.
// `import.meta.url` has no CommonJS form, so it becomes the file's URL before compiling.
const { createHash } = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { transformSync } = require('@swc/core');

const root = path.join(__dirname, '..');
const source = path.join(root, 'node_modules/@nestjs');
const target = path.join(root, 'node_modules/.cache/herald-jest-cjs/@nestjs');

function copyTree(from, to) {
  fs.mkdirSync(to, { recursive: true });
  for (const e of fs.readdirSync(from, { withFileTypes: true })) {
    const src = path.join(from, e.name);
    const dst = path.join(to, e.name);
    if (e.isDirectory()) {
      if (e.name !== 'node_modules') copyTree(src, dst);
    } else if (e.name === 'package.json') {
      const pkg = JSON.parse(fs.readFileSync(src, 'utf8'));
      pkg.type = 'commonjs';
      fs.writeFileSync(dst, JSON.stringify(pkg));
    } else if (e.name.endsWith('.js') || e.name.endsWith('.mjs')) {
      const code = fs.readFileSync(src, 'utf8').replace(/import\.meta\.url/g, '("file://" + __filename)');
      const out = transformSync(code, {
        filename: src,
        jsc: { target: 'es2022', parser: { syntax: 'ecmascript' } },
        module: { type: 'commonjs', ignoreDynamic: false },
        sourceMaps: false,
      });
      fs.writeFileSync(dst, out.code);
    } else if (!e.name.endsWith('.d.ts') && !e.name.endsWith('.map')) {
      fs.copyFileSync(src, dst);
    }
  }
}

module.exports = function prepareNestCjs() {
  const versions = fs.readdirSync(source).map((p) => `${p}@${JSON.parse(fs.readFileSync(path.join(source, p, 'package.json'), 'utf8')).version}`);
  const stamp = createHash('sha256').update(`v2:${versions.join(',')}`).digest('hex');
  const stampFile = path.join(target, '.stamp');
  if (fs.existsSync(stampFile) && fs.readFileSync(stampFile, 'utf8') === stamp) return;
  fs.rmSync(target, { recursive: true, force: true });
  for (const p of fs.readdirSync(source)) copyTree(path.join(source, p), path.join(target, p));
  fs.writeFileSync(stampFile, stamp);
};

module.exports.target = target;
