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
    } finally {
      await result.stop();
    }
  }, 180_000);
});
