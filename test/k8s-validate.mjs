// Validates Kubernetes objects (a JSON array on stdin) against the API schemas of the
// `kubernetes-models` package, offline. A separate ES module because that package is ESM-only and
// Jest's CommonJS runtime cannot import it. Prints a JSON array of problems ([] when all are valid).
import { text } from 'node:stream/consumers';

const objects = JSON.parse(await text(process.stdin));
const problems = [];
for (const o of objects) {
  const where = `${o.kind}/${o.metadata?.name}`;
  let models;
  try {
    models = await import(`kubernetes-models/${o.apiVersion}`);
  } catch {
    problems.push({ object: where, error: `unknown apiVersion ${o.apiVersion}` });
    continue;
  }
  const Model = models[o.kind];
  if (!Model) {
    problems.push({ object: where, error: `unknown kind ${o.kind} in ${o.apiVersion}` });
    continue;
  }
  try {
    new Model(o).validate();
  } catch (err) {
    problems.push({ object: where, error: String(err.message ?? err) });
  }
}
process.stdout.write(JSON.stringify(problems));
