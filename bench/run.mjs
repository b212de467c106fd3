// `npm run bench [name...]`: runs bench/<name>.mjs for each name given, or all of them, in order.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ALL = [
  'codec',
  'propagator',
  'proxy',
  'latency',
  'mysql',
  'redis',
  'node-redis',
  'amqp',
  'pg',
  'mqtt',
  'proxyless',
  'isolation',
  'fetch',
  'gateway',
  'data-layers',
  'bullmq',
  'guard',
];
const names = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ALL;
let failed = false;
for (const name of names) {
  const file = fileURLToPath(new URL(`./${name}.mjs`, import.meta.url));
  if (!existsSync(file)) {
    console.error(`unknown benchmark "${name}"; known: ${ALL.join(', ')}`);
    process.exit(2);
  }
  // tsx: a benchmark may start servers with the tests' own helpers (test/support, TypeScript).
  const { status } = spawnSync(process.execPath, ['--import', 'tsx', file], { stdio: 'inherit' });
  failed ||= status !== 0;
}
process.exit(failed ? 1 : 0);
