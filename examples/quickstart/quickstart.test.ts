// The quickstart's README steps, on free ports: a second Redis, Redis's picop-proxy, the service
// (loaded with its instrumentation file), the gateway; then its curl commands, and each Redis read
// directly.
import { type ChildProcess, exec, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ExtraServer, REDIS_HOST, REDIS_PORT, startRedis } from '../../test/support/servers';

const here = fileURLToPath(new URL('.', import.meta.url));
const root = fileURLToPath(new URL('../..', import.meta.url));
const KEY = 'quickstart:visits';

/** Starts a command and resolves with the first stdout line that `match` finds something in. */
function start(
  children: ChildProcess[],
  args: string[],
  match: RegExp,
  env: Record<string, string> = {},
): Promise<string> {
  const child = spawn(process.execPath, args, {
    cwd: here,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d) => {
      out += d;
      const found = match.exec(out);
      if (found) resolve(found[1] as string);
    });
    child.on('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code}: ${out}`)));
  });
}

describe('examples/quickstart', () => {
  const children: ChildProcess[] = [];
  let feature1: ExtraServer;
  let gateway: string;
  let baseline: Redis;
  let own: Redis;
  beforeAll(async () => {
    feature1 = await startRedis();
    const proxy = await start(
      children,
      [
        `${root}packages/proxy/bin/picop-proxy.js`,
        '--listen',
        '127.0.0.1:0',
        '--default',
        `${REDIS_HOST}:${REDIS_PORT}`,
        '--route',
        `feature-1=127.0.0.1:${feature1.port}`,
      ],
      /listening on ([\d.:]+)/,
    );
    const service = await start(
      children,
      ['--import', './instrumentation.mjs', 'service.mjs'],
      /service listening on (\S+)/,
      { PORT: '0', REDIS_PROXY_PORT: proxy.split(':')[1] as string },
    );
    gateway = await start(
      children,
      [
        `${root}packages/gateway/bin/picop-gateway.js`,
        '--listen',
        '127.0.0.1:0',
        '--upstream',
        service,
      ],
      /"listen":"([^"]+)"/,
    );
    baseline = new Redis({ host: REDIS_HOST, port: REDIS_PORT });
    own = new Redis({ host: '127.0.0.1', port: feature1.port });
  }, 60_000);
  afterAll(async () => {
    for (const c of children) c.kill('SIGTERM');
    await baseline?.del(KEY);
    baseline?.disconnect();
    own?.disconnect();
    await feature1?.stop();
  });

  const curl = async (header?: string) =>
    JSON.parse(
      (await promisify(exec)(`curl -s ${header ? `-H '${header}' ` : ''}http://${gateway}/`))
        .stdout,
    );

  it("counts each environment's visits in its own Redis", async () => {
    const before = Number(await baseline.get(KEY));
    expect(await curl('Env-Id: feature-1')).toEqual({ envId: 'feature-1', visits: 1 });
    expect(await curl()).toEqual({ envId: null, visits: before + 1 });
    expect(await own.get(KEY)).toBe('1');
    // feature-2 has no Redis of its own: the baseline's serves it.
    expect(await curl('Env-Id: feature-2')).toEqual({ envId: 'feature-2', visits: before + 2 });
    expect(await own.get(KEY)).toBe('1');
    expect(Number(await baseline.get(KEY))).toBe(before + 2);
  });
});
