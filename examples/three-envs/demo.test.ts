import { exec } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { runDemo } from './demo';

// The end-to-end test of the whole project: the paper's three environments, real MariaDB, Redis
// and RabbitMQ, every package, one request per environment.
describe("the paper's three environments", () => {
  it('routes every request as Table I says', async () => {
    const result = await runDemo();
    try {
      expect(result.rows).toEqual(result.expected);
      expect(result.ok).toBe(true);
      // The curl commands `--keep` prints reach the A and B that Table I gives.
      // (Not execSync: the proxies and the gateway run in this process.)
      const answers = await Promise.all(
        result.tryThis.map(async (command) => JSON.parse((await promisify(exec)(command)).stdout)),
      );
      expect(answers.map(({ A, B }) => ({ A, B }))).toEqual(
        result.expected.map(({ A, B }) => ({ A, B })),
      );
    } finally {
      await result.stop();
    }
  }, 180_000);
});
