import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const packagesDir = fileURLToPath(new URL('./packages/', import.meta.url));

// Tests run against each package's sources; test/packaging.test.ts checks the built dist/.
const alias = [
  { find: /^@picop\/mysql\/callback$/, replacement: `${packagesDir}mysql/src/callback.ts` },
  { find: /^@picop\/net-wrap\/internal$/, replacement: `${packagesDir}net-wrap/src/internal.ts` },
  ...readdirSync(packagesDir).map((dir) => ({
    find: new RegExp(`^@picop/${dir === 'picop-codec' ? 'codec' : dir}$`),
    replacement: `${packagesDir}${dir}/src/index.ts`,
  })),
];

export default defineConfig({
  resolve: { alias },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts', 'examples/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
