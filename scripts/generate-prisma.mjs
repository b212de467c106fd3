// Generates the Prisma client of the data-layer tests and benchmark (test/data-layers/prisma) into
// its generated/ folder. Offline: `prisma generate` looks for a schema engine, downloading one
// when PRISMA_SCHEMA_ENGINE_BINARY names none, but never runs it to generate a client; any
// existing file will do, and this Node binary is one.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const cli = createRequire(import.meta.url).resolve('prisma/build/index.js');
const schema = fileURLToPath(new URL('../test/data-layers/prisma/schema.prisma', import.meta.url));
const { status } = spawnSync(process.execPath, [cli, 'generate', '--schema', schema], {
  stdio: ['ignore', 'ignore', 'inherit'],
  env: { ...process.env, PRISMA_SCHEMA_ENGINE_BINARY: process.execPath },
});
process.exit(status ?? 1);
