// `npm run demo [-- --keep] [-- --proxyless | --isolate] [-- --node-redis]`: runs the demo, prints
// the table, checks it against Table I.
import { type DemoMode, type DemoRow, runDemo } from './demo';

const keep = process.argv.includes('--keep');
const mode: DemoMode = process.argv.includes('--proxyless')
  ? 'proxyless'
  : process.argv.includes('--isolate')
    ? 'isolate'
    : 'proxies';
// Services B and the consumer use node-redis (@picop/node-redis) instead of ioredis.
const redisClient = process.argv.includes('--node-redis') ? 'node-redis' : 'ioredis';

function print(title: string, rows: DemoRow[]): void {
  const header = [
    'request Env-Id',
    'A served by',
    'B served by',
    'MySQL write in',
    'PostgreSQL write in',
    'Redis write in',
    'AMQP message handled by',
    'MQTT message handled by',
  ];
  const cells = rows.map((r) => [
    r.request,
    r.A,
    r.B,
    r.mysql,
    r.postgres,
    r.redis,
    r.consumer,
    r.mqtt,
  ]);
  const widths = header.map((h, i) =>
    Math.max(h.length, ...cells.map((c) => (c[i] as string).length)),
  );
  const line = (c: string[]) => c.map((x, i) => x.padEnd(widths[i] as number)).join('  ');
  process.stdout.write(
    `\n${title}\n${line(header)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n`,
  );
  for (const c of cells) process.stdout.write(`${line(c)}\n`);
}

async function main(): Promise<void> {
  const result = await runDemo({
    log: (m) => process.stdout.write(`${m}\n`),
    mode,
    keep,
    redisClient,
  });
  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    await result.stop();
    process.exit(code);
  };
  process.on('SIGINT', () => void stop(130));
  process.on('SIGTERM', () => void stop(143));
  print('What happened (read from each instance):', result.rows);
  if (mode === 'isolate') {
    process.stdout.write(
      '\nOne server of each kind: C[feature-1] is the database test_feature-1 on the one MariaDB,\nPG[feature-1] the schema env_feature-1 on the one PostgreSQL, Redis[feature-2] the key prefix\npicop-env:feature-2: on the one Redis; the brackets name the environment, as in Table I.\n',
    );
  }
  if (!result.ok) {
    print("What the paper's Table I expects:", result.expected);
    process.stdout.write('\nMISMATCH: the routing above differs from Table I.\n');
  } else {
    process.stdout.write(
      '\nOK: every request reached the instances Table I gives for its environment.\n',
    );
  }
  if (keep) {
    process.stdout.write(
      `\nStill running (Ctrl-C stops everything). Try:\n${result.tryThis.map((t) => `  ${t}`).join('\n')}\n\nRead the stores (where each request's work landed):\n${result.stores.map((t) => `  ${t}`).join('\n')}\n`,
    );
    return;
  }
  await stop(result.ok ? 0 : 1);
}

main().catch((err) => {
  process.stderr.write(`demo failed: ${err.stack ?? err}\n`);
  process.exit(1);
});
