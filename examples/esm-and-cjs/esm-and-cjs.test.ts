// The README's OpenTelemetry set-up, as an ES module service and as a CommonJS one: a request
// with `Env-Id: feature-1` writes to feature-1's Redis, one without to the baseline's.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { createProxy, type PicopProxy } from '@picop/proxy';
import { Redis as IORedis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ExtraServer,
  REDIS_HOST,
  REDIS_PORT,
  startRedis,
} from '../../test/support/servers.js';

const dir = fileURLToPath(new URL('.', import.meta.url));
const run = `picop:example:${Date.now().toString(36)}`;

async function start(
  args: string[],
  redisPort: number,
): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, args, {
    cwd: dir,
    env: { ...process.env, PORT: '0', REDIS_PORT: String(redisPort) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [line] = (await once(child.stdout as NodeJS.ReadableStream, 'data')) as [Buffer];
  return { child, port: Number(/listening on (\d+)/.exec(line.toString())?.[1]) };
}

describe('the example service, ES module and CommonJS', () => {
  let second: ExtraServer;
  let proxy: PicopProxy;
  let main: IORedis;
  let feature: IORedis;
  const children: ChildProcess[] = [];
  beforeAll(async () => {
    second = await startRedis();
    proxy = createProxy({
      listen: '127.0.0.1:0',
      defaultRoute: `${REDIS_HOST}:${REDIS_PORT}`,
      routes: { 'feature-1': `127.0.0.1:${second.port}` },
    });
    await proxy.listen();
    main = new IORedis({ host: REDIS_HOST, port: REDIS_PORT });
    feature = new IORedis({ host: '127.0.0.1', port: second.port });
  });
  afterAll(async () => {
    for (const child of children) child.kill();
    await main.del(`${run}:esm`, `${run}:cjs`);
    main.disconnect();
    feature.disconnect();
    await proxy.close(100);
    await second.stop();
  });

  for (const [kind, args] of [
    ['esm', ['--import', './instrumentation.mjs', 'server.mjs']],
    ['cjs', ['--require', './instrumentation.cjs', 'server.cjs']],
  ] as const) {
    it(`${kind}: routes a request with Env-Id: feature-1 to feature-1's Redis`, async () => {
      const { child, port } = await start([...args], proxy.address?.port as number);
      children.push(child);
      const key = `${run}:${kind}`;
      const inFeature = await fetch(`http://127.0.0.1:${port}/?key=${key}`, {
        headers: { 'Env-Id': 'feature-1' },
      });
      expect(await inFeature.text()).toBe('feature-1');
      expect(await feature.get(key)).toBe('feature-1');
      const inBaseline = await fetch(`http://127.0.0.1:${port}/?key=${key}`);
      expect(await inBaseline.text()).toBe('baseline');
      expect(await main.get(key)).toBe('baseline');
    });
  }
});
