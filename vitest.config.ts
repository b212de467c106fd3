import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const packagesDir = fileURLToPath(new URL('./packages/', import.meta.url));
const modulesDir = fileURLToPath(new URL('./node_modules/', import.meta.url));

// Tests run against each package's sources; test/packaging.test.ts checks the built dist/.
const alias = [
  { find: /^@picop\/mysql\/callback$/, replacement: `${packagesDir}mysql/src/callback.ts` },
  {
    find: /^@picop\/propagator\/internal$/,
    replacement: `${packagesDir}propagator/src/internal.ts`,
  },
  { find: /^@picop\/net-wrap\/internal$/, replacement: `${packagesDir}net-wrap/src/internal.ts` },
  ...readdirSync(packagesDir).map((dir) => ({
    find: new RegExp(`^@picop/${dir === 'picop-codec' ? 'codec' : dir}$`),
    replacement: `${packagesDir}${dir}/src/index.ts`,
  })),
];

// The wrappers' tests again with the other supported major of the wrapped library (installed
// here under an alias), resolved in place of the default one.
const otherMajors = [
  {
    name: 'ioredis-6',
    module: 'ioredis',
    tests: 'packages/redis/test/{idiom-matrix,routes-each-environment}.test.ts',
  },
];

export default defineConfig({
  test: {
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    projects: [
      {
        resolve: { alias },
        test: {
          name: 'default',
          include: ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts', 'examples/**/*.test.ts'],
        },
        extends: true,
      },
      // The proxy's relay tests again on its portable read path (plain 'data' events).
      {
        resolve: { alias },
        test: {
          name: 'proxy-portable',
          include: [
            'packages/proxy/test/{robustness,routes-by-env-id,hardening,read-path}.test.ts',
          ],
          env: { PICOP_PROXY_RELAY: 'portable' },
        },
        extends: true as const,
      },
      ...otherMajors.map(({ name, module, tests }) => ({
        resolve: {
          alias: [
            ...alias,
            { find: new RegExp(`^${module}$`), replacement: `${modulesDir}${name}/built/index.js` },
          ],
        },
        test: { name, include: [tests] },
        extends: true as const,
      })),
    ],
  },
});
