// Prefixes no other environment can reach: with key-prefix (Redis) or topic-prefix (MQTT)
// isolation, no key or topic the baseline can name is an environment's, and no baseline wildcard
// subscription receives an environment's message.
import { connectAsync } from '@picop/mqtt';
import { withEnvId } from '@picop/propagator';
import { Redis } from '@picop/redis';
import { Redis as IORedis } from 'ioredis';
import type { MqttClient } from 'mqtt';
import { describe, expect, it } from 'vitest';
import { useContextManager } from '../support/otel-and-tls.js';
import { runId } from '../support/run-id.js';
import { MQTT_PORT, REDIS_PORT } from '../support/servers.js';

useContextManager();
const run = `overlap${runId()}`;
const refused = { code: 'ERR_PICOP_INVALID_ARG' };

describe('Redis key-prefix isolation', () => {
  it("the baseline cannot name an environment's key, in a command, a pipeline or a transaction", async () => {
    const direct = new IORedis({ host: '127.0.0.1', port: REDIS_PORT });
    const redis = new Redis({
      host: '127.0.0.1',
      port: REDIS_PORT,
      keyPrefix: `${run}:`,
      picop: { isolate: { keyPrefix: true } },
    });
    try {
      await withEnvId('feature-1', () => redis.set('cart', 'feature-1'));
      // The key the old scheme gave feature-1 is the baseline's own now.
      await redis.set('feature-1:cart', 'baseline');
      expect(await withEnvId('feature-1', () => redis.get('cart'))).toBe('feature-1');
      await expect(redis.get('picop-env:feature-1:cart')).rejects.toMatchObject(refused);
      await expect(redis.set('picop-env:feature-1:cart', 'x')).rejects.toMatchObject(refused);
      // Queued in a pipeline or a transaction: refused at once (a reply missing later would shift
      // the transaction's results).
      expect(() => redis.pipeline().get('picop-env:feature-1:cart')).toThrow(
        expect.objectContaining(refused),
      );
      expect(() => redis.multi().set('a', '1').del('picop-env:feature-1:cart')).toThrow(
        expect.objectContaining(refused),
      );
      expect(await direct.get(`${run}:picop-env:feature-1:cart`)).toBe('feature-1');
    } finally {
      await direct.del(`${run}:picop-env:feature-1:cart`, `${run}:feature-1:cart`);
      redis.disconnect();
      direct.disconnect();
    }
  });
});

describe('MQTT topic-prefix isolation', () => {
  it("baseline wildcards never deliver an environment's message; its topics cannot be named", async () => {
    const client: MqttClient = await connectAsync(`mqtt://127.0.0.1:${MQTT_PORT}`, {
      protocolVersion: 5,
      picop: { isolate: { topicPrefix: (envId) => `${envId}/` } },
    });
    const got: Array<[string, string]> = [];
    let wake: () => void = () => {};
    client.on('message', (topic, payload) => {
      got.push([topic, String(payload)]);
      wake();
    });
    try {
      await client.subscribeAsync('#', { qos: 1 });
      await withEnvId('feature-1', () => client.subscribeAsync(`${run}/orders`, { qos: 1 }));
      await expect(client.subscribeAsync('picop-env/#')).rejects.toMatchObject(refused);
      await expect(
        client.publishAsync(`picop-env/feature-1/${run}/orders`, 'forged'),
      ).rejects.toMatchObject(refused);
      // The old scheme's topic of feature-1 is the baseline's own: feature-1 does not get it.
      await client.publishAsync(`feature-1/${run}/orders`, 'baseline', { qos: 1 });
      await withEnvId('feature-1', () => client.publishAsync(`${run}/orders`, 'f1', { qos: 1 }));
      await client.publishAsync(`${run}/done`, 'end', { qos: 1 });
      // feature-1's own copy comes on its connection; on the baseline's, 'end' comes after
      // anything the broker sent it before (a leaked feature-1 message would be there).
      const has = (topic: string) => got.some(([t]) => t === topic);
      while (!has(`${run}/done`) || !has(`${run}/orders`)) {
        await new Promise<void>((r) => (wake = r));
      }
      const mine = got.filter(([t]) => t.includes(run));
      expect(mine).toHaveLength(3);
      expect(mine).toEqual(
        expect.arrayContaining([
          [`feature-1/${run}/orders`, 'baseline'],
          [`${run}/orders`, 'f1'],
          [`${run}/done`, 'end'],
        ]),
      );
    } finally {
      await client.endAsync();
    }
  });
});
