import { exec } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { type DemoMode, runDemo } from './demo';

// The end-to-end test of the whole project: the paper's three environments, real MariaDB, Redis
// and RabbitMQ, every package, one request per environment.
describe("the paper's three environments", () => {
  it('routes every request as Table I says', async () => {
    const result = await runDemo({ keep: true });
    try {
      expect(result.rows).toEqual(result.expected);
      expect(result.ok).toBe(true);
      // The curl commands `--keep` prints reach the A and B that Table I gives.
      // (Not execSync: the proxies and the gateway run in this process.)
      const answers = await Promise.all(
        result.tryThis.map(async (command) => JSON.parse((await promisify(exec)(command)).stdout)),
      );
      // An error answer shows in the diff as itself.
      expect(answers.map(({ A, B, error }) => (error ? { error } : { A, B }))).toEqual(
        result.expected.map(({ A, B }) => ({ A, B })),
      );
      // The read commands `--keep` prints show each store's rows and keys: feature-1's own MySQL
      // holds feature-1's request, and only it.
      const read = async (label: string) => {
        const line = result.stores.find((s) => s.startsWith(label)) as string;
        return (await promisify(exec)(line.slice(line.indexOf(': ') + 2))).stdout;
      };
      const f1 = await read('C[feature-1]');
      expect(f1).toContain('-feature-1');
      expect(f1).not.toContain('-feature-2');
      expect(await read('Redis[feature-2]')).toContain('-feature-2');
    } finally {
      await result.stop();
    }
  }, 180_000);
});

// The same table with node-redis in place of ioredis, in every mode.
describe.each(['proxies', 'proxyless', 'isolate'] as DemoMode[])(
  'the demo with node-redis, %s',
  (mode) => {
    it('gives the same Table I', async () => {
      const result = await runDemo({ mode, redisClient: 'node-redis' });
      try {
        expect(result.rows).toEqual(result.expected);
      } finally {
        await result.stop();
      }
    }, 180_000);
  },
);

// The same table when the clients route the stores themselves, and when every environment lives
// in its own database / schema / key prefix on one server each.
describe.each(['proxyless', 'isolate'] as DemoMode[])('the demo in %s mode', (mode) => {
  it('gives the same Table I', async () => {
    const result = await runDemo({ mode });
    try {
      expect(result.rows).toEqual(result.expected);
    } finally {
      await result.stop();
    }
  }, 180_000);
});
