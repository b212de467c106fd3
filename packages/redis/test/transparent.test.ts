import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createProxy, type PicopProxy } from '@picop/proxy';
import { Redis } from '@picop/redis';
import { Redis as IORedis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runId } from '../../../test/support/run-id.js';
import { REDIS_HOST, REDIS_PORT } from '../../../test/support/servers.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const key = `picop:redis:plain:${runId()}`;

describe('@picop/redis is transparent', () => {
  it('is plain ioredis with picop: false: direct connection, same replies and errors', async () => {
    const plain = new IORedis({ host: REDIS_HOST, port: REDIS_PORT });
    const off = new Redis({ host: REDIS_HOST, port: REDIS_PORT, picop: false });
    expect(off.pools).toBeUndefined();
    expect(await off.set(key, 'v')).toBe(await plain.set(key, 'v'));
    expect(await off.hgetall('no-such-hash')).toEqual(await plain.hgetall('no-such-hash'));
    expect(await off.pipeline().get(key).incr(`${key}:n`).exec()).toEqual([
      [null, 'v'],
      [null, 1],
    ]);
    const e1 = await plain.lpush(key, 'x').catch((e) => e);
    const e2 = await off.lpush(key, 'x').catch((e) => e);
    expect([e2.name, e2.message]).toEqual([e1.name, e1.message]);
    expect(off.status).toBe('ready');
    await plain.del(key, `${key}:n`);
    await off.quit();
    await plain.quit();
  });

  describe('with @opentelemetry/instrumentation-ioredis', () => {
    let proxy: PicopProxy;
    let port: number;
    beforeAll(async () => {
      proxy = createProxy({
        listen: '127.0.0.1:0',
        defaultRoute: `${REDIS_HOST}:${REDIS_PORT}`,
        routes: { 'feature-1': `${REDIS_HOST}:${REDIS_PORT}` },
      });
      port = (await proxy.listen()).port;
    });
    afterAll(() => proxy.close(100));

    it('still records a span per command, as a CommonJS service set up with the NodeSDK', async () => {
      const script = `
        const { NodeSDK } = require('@opentelemetry/sdk-node');
        const { InMemorySpanExporter, SimpleSpanProcessor } = require('@opentelemetry/sdk-trace-base');
        const { IORedisInstrumentation } = require('@opentelemetry/instrumentation-ioredis');
        const exporter = new InMemorySpanExporter();
        const sdk = new NodeSDK({ spanProcessors: [new SimpleSpanProcessor(exporter)], instrumentations: [new IORedisInstrumentation()], metricReaders: [], logRecordProcessors: [] });
        sdk.start();
        const { trace } = require('@opentelemetry/api');
        const { Redis } = require('@picop/redis');
        const { withEnvId } = require('@picop/propagator');
        (async () => {
          const redis = new Redis({ host: '127.0.0.1', port: ${port} });
          // The instrumentation records commands made inside a span (a request's), by default.
          await trace.getTracer('test').startActiveSpan('request', async (span) => {
            await withEnvId('feature-1', () => redis.get('${key}'));
            span.end();
          });
          await redis.quit();
          console.log(JSON.stringify(exporter.getFinishedSpans().map((s) => s.name)));
          await sdk.shutdown();
        })();`;
      const { stdout } = await promisify(execFile)(process.execPath, ['-e', script], { cwd: root });
      expect(JSON.parse(stdout.trim().split('\n').pop() as string)).toContain('get');
      expect(proxy.stats().byEnv['feature-1']?.accepted).toBe(1);
    });
  });
});
