import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const packagesDir = fileURLToPath(new URL('./packages/', import.meta.url));
const HAVE_HAPROXY = spawnSync('haproxy', ['-v']).status === 0;
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

// The wrappers' tests again with the oldest release of each wrapped library's peer range and the
// other supported major (installed here under an alias), resolved in place of the default one (the
// newest). amqplib's oldest runs in packages/amqp/test/amqplib-0.10.test.ts: the wrapper loads
// its internals by path.
const peerRanges = [
  {
    name: 'mysql2-oldest',
    modules: { mysql2: 'index.js', 'mysql2/promise': 'promise.js' },
    tests: 'packages/mysql/test/*.test.ts',
  },
  {
    name: 'ioredis-oldest',
    modules: { ioredis: 'built/index.js' },
    tests: 'packages/redis/test/*.test.ts',
  },
  {
    name: 'ioredis-6',
    modules: { ioredis: 'built/index.js' },
    tests: 'packages/redis/test/*.test.ts',
  },
  {
    name: 'redis-oldest',
    modules: { redis: 'dist/index.js' },
    tests: 'packages/node-redis/test/*.test.ts',
  },
  { name: 'pg-oldest', modules: { pg: 'lib/index.js' }, tests: 'packages/pg/test/*.test.ts' },
  {
    name: 'mqtt-oldest',
    modules: { mqtt: 'build/src/mqtt.js' },
    tests: 'packages/mqtt/test/*.test.ts',
  },
  {
    name: 'bullmq-oldest',
    modules: { bullmq: 'dist/cjs/index.js' },
    tests: 'packages/bullmq/test/{jobs,job-paths}.test.ts',
  },
  {
    name: 'undici-oldest',
    modules: { undici: 'index.js' },
    tests: 'packages/fetch/test/*.test.ts',
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
      // The proxy's relay tests again on PiCoP on HAProxy (picop-haproxy's configuration and
      // haproxy/picop.lua in a real HAProxy), where HAProxy is installed (CI installs it).
      ...(HAVE_HAPROXY
        ? [
            {
              resolve: { alias },
              test: {
                name: 'proxy-haproxy',
                include: [
                  'packages/proxy/test/{robustness,routes-by-env-id,hardening,routes-file,go-reference-interop}.test.ts',
                ],
                env: { PICOP_PROXY_ENGINE: 'haproxy' },
              },
              extends: true as const,
            },
          ]
        : []),
      // The idiom matrices again under the real instrumentations and a PicopGuard in throw mode:
      // no wrapper's work may be taken for work that escaped its environment.
      {
        resolve: { alias },
        test: {
          name: 'guarded',
          include: [
            'packages/{redis,node-redis,mysql,pg,amqp,mqtt}/test/idiom-matrix.test.ts',
            'packages/fetch/test/fetch-through-proxy.test.ts',
            'test/data-layers/*.test.ts',
          ],
          setupFiles: ['test/support/guarded-setup.ts'],
          env: { PICOP_GUARDED: '1' },
          execArgv: ['--import', './test/support/guarded-hook.mjs'],
        },
        extends: true as const,
      },
      ...peerRanges.map(({ name, modules, tests }) => ({
        resolve: {
          alias: [
            ...Object.entries(modules).map(([module, file]) => ({
              find: new RegExp(`^${module}$`),
              replacement: `${modulesDir}${name}/${file}`,
            })),
            ...alias,
          ],
        },
        test: {
          name,
          include: [tests],
          // For the tests of behaviour that is the library's own and changed within the range.
          env: {
            PEER_VERSION: JSON.parse(readFileSync(`${modulesDir}${name}/package.json`, 'utf8'))
              .version,
          },
        },
        extends: true as const,
      })),
    ],
  },
});
