/** One jest run for unit (`*.spec.ts`) and integration (`*.integration-spec.ts`) tests. */
const { readdirSync } = require('node:fs');

const libs = readdirSync(`${__dirname}/libs`);
// Packages that ship ES modules only and that a dependency require()s (@fastify/static requires
// content-disposition@3): Node 20.19 loads them so, Jest's module runtime cannot, so Jest compiles
// them to CommonJS as it does our sources.
const esmOnly = ['content-disposition'];
const esmOnlyPath = `/node_modules/(.+/)?(${esmOnly.join('|')})/`;
module.exports = {
  testEnvironment: 'node',
  rootDir: __dirname,
  roots: ['<rootDir>/apps', '<rootDir>/libs', '<rootDir>/tools', '<rootDir>/test'],
  testMatch: ['**/*.spec.ts', '**/*.integration-spec.ts'],
  transform: {
    '^.+\\.ts$': [
      '@swc/jest',
      {
        jsc: {
          target: 'es2022',
          parser: { syntax: 'typescript', decorators: true },
          transform: { legacyDecorator: true, decoratorMetadata: true, useDefineForClassFields: false },
          keepClassNames: true,
        },
        module: { type: 'commonjs' },
      },
    ],
    [`${esmOnlyPath}.+\\.js$`]: ['@swc/jest', { jsc: { target: 'es2022', parser: { syntax: 'ecmascript' } }, module: { type: 'commonjs' } }],
  },
  transformIgnorePatterns: [`/node_modules/(?!(.+/)?(${esmOnly.join('|')})/)`],
  moduleNameMapper: {
    ...Object.fromEntries(libs.map((l) => [`^@herald/${l}$`, `<rootDir>/libs/${l}/src/index.ts`])),
    // NestJS 12 is ES modules only: see test/nest-cjs.js.
    '^@nestjs/(.*)$': '<rootDir>/node_modules/.cache/herald-jest-cjs/@nestjs/$1',
  },
  setupFiles: ['reflect-metadata'],
  globalSetup: '<rootDir>/test/global-setup.js',
  testTimeout: 60_000,
  reporters: ['default', '<rootDir>/test/summary-reporter.js'],
};
