import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect } from '@picop/net-wrap';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { echoServer, readAll } from './helpers.js';

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
// What the image runs the command with (docker/Dockerfile), and the README recommends: a small
// young generation, so that connection churn does not grow the heap.
const MEMORY_NODE_OPTIONS = /^ENV NODE_OPTIONS=(.+)$/m.exec(
  readFileSync(fileURLToPath(new URL('../../../docker/Dockerfile', import.meta.url)), 'utf8'),
)?.[1];

function startCli(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): { child: ChildProcess; started: Promise<Record<string, string>> } {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const started = new Promise<Record<string, string>>((resolve) => {
    child.stdout?.on('data', (d) => {
      out += d;
      const line = out.split('\n').find((l) => l.includes('picop-proxy listening on'));
      if (line !== undefined) resolve(JSON.parse(line));
    });
  });
  return { child, started };
}

function exitOf(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number | null; stderr: string; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { PATH: process.env.PATH, ...env },
    });
    let stderr = '';
    let stdout = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.stdout.on('data', (d) => (stdout += d));
    child.on('exit', (code) => resolve({ code, stderr, stdout }));
  });
}

const portIn = (address: string | undefined) => Number(address?.split(':').pop());

describe('picop-proxy command', () => {
  let echo: Awaited<ReturnType<typeof echoServer>>;
  beforeAll(async () => {
    echo = await echoServer();
  });
  afterAll(() => echo.server.close());

  it('routes with flags, serves the admin API, and drains on SIGTERM', async () => {
    const { child, started } = startCli([
      '--listen',
      '127.0.0.1:0',
      '--default',
      '127.0.0.1:1',
      '--route',
      `feature-1=127.0.0.1:${echo.port}`,
      '--admin',
      '127.0.0.1:0',
      '--log-level',
      'error',
    ]);
    const line = await started;
    // One start-up line, logged even at --log-level error, with what the proxy routes.
    expect(line).toMatchObject({ default: '127.0.0.1:1', routes: 1, header: 'required' });
    const port = portIn(line.listen);
    const adminPort = portIn(line.admin);
    const client = connect({ host: '127.0.0.1', port, fields: { 'Env-Id': 'feature-1' } });
    const reply = readAll(client);
    client.end('hi');
    expect(await reply).toBe('hibye');
    const routes = await (await fetch(`http://127.0.0.1:${adminPort}/routes`)).json();
    expect(routes).toEqual({
      default: '127.0.0.1:1',
      routes: { 'feature-1': `127.0.0.1:${echo.port}` },
    });
    // The proxy's metrics, with Node's process metrics (prom-client) next to them.
    const metrics = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
    expect(metrics).toContain('picop_proxy_connections_accepted_total{env="feature-1"} 1');
    expect(metrics).toContain('process_open_fds');
    expect(metrics).toContain('nodejs_eventloop_lag_seconds');
    const exited = new Promise((r) => child.on('exit', r));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });

  it('prints its version', async () => {
    const { code, stdout } = await exitOf(['--version']);
    expect(code).toBe(0);
    expect(stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('refuses an unknown config-file key, naming the closest one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'picop-cli-'));
    const file = join(dir, 'proxy.json');
    writeFileSync(file, JSON.stringify({ listen: '127.0.0.1:0', defualt: '127.0.0.1:1' }));
    const { code, stderr } = await exitOf(['--config', file]);
    expect(code).toBe(2);
    expect(stderr).toMatch(/unknown key "defualt".*did you mean "defaultRoute"/);
  });

  it('reads a JSON config file and environment variables, flags winning', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'picop-cli-'));
    const file = join(dir, 'proxy.json');
    writeFileSync(
      file,
      JSON.stringify({
        listen: '127.0.0.1:1',
        routes: [{ env_id: 'a', destination: '127.0.0.1:2' }],
        headerTimeoutMs: 100,
      }),
    );
    const config = loadConfig(['--config', file, '--listen', '127.0.0.1:0'], {
      PICOP_PROXY_HEADER: 'optional',
    });
    expect(config).toMatchObject({
      listen: { host: '127.0.0.1', port: 0 },
      routes: { a: '127.0.0.1:2' },
      header: 'optional',
      headerTimeoutMs: 100,
    });
    // Each setting comes from one place: the variable's routes replace the file's.
    expect(loadConfig(['--config', file], { PICOP_PROXY_ROUTES: 'b=127.0.0.1:3' })).toMatchObject({
      routes: { b: '127.0.0.1:3' },
    });
    expect(loadConfig(['--admin', '9001'], { PICOP_PROXY_LISTEN: ':9000' })).toMatchObject({
      listen: { host: '127.0.0.1', port: 9000 },
      admin: { host: '127.0.0.1', port: 9001 },
    });
  });

  it('documents every flag in --help', async () => {
    const { code, stdout } = await exitOf(['--help']);
    expect(code).toBe(0);
    for (const flag of [
      '--listen',
      '--default',
      '--route',
      '--header',
      '--propagate',
      '--dialect',
      '--admin',
      '--config',
      '--grace',
    ]) {
      expect(stdout).toContain(flag);
    }
  });

  it('fails at start with a clear message and exit code 2 on bad configuration', async () => {
    const cases: Array<[string[], RegExp]> = [
      [[], /--listen is required/],
      [['--listen', 'x'], /--listen must be "host:port"/],
      [['--listen', ':0', '--route', 'feature-1'], /--route: a route is ENV=HOST:PORT/],
      [['--listen', ':0', '--route', 'a=host:70000'], /invalid port/],
      [['--listen', ':0', '--header', 'maybe'], /--header must be required or optional/],
      [['--listen', ':0', '--header-timeout', 'soon'], /--header-timeout must be an integer/],
      [['--listen', ':0', '--bogus'], /Unknown option '--bogus'/],
      [['--config', '/nonexistent.json'], /cannot read/],
    ];
    for (const [args, message] of cases) {
      const { code, stderr } = await exitOf(args);
      expect(code, args.join(' ')).toBe(2);
      expect(stderr).toMatch(message);
    }
  });

  // The documented bound (README, "Memory"): with the V8 setting the image applies.
  const BOUND_MIB = 128;
  it.runIf(existsSync('/proc/self/status'))(
    `stays under ${BOUND_MIB} MiB of resident memory over 20,000 connection cycles, with NODE_OPTIONS=${MEMORY_NODE_OPTIONS}`,
    async () => {
      expect(MEMORY_NODE_OPTIONS).toBe('--max-semi-space-size=2');
      const { child, started } = startCli(
        ['--listen', '127.0.0.1:0', '--default', `127.0.0.1:${echo.port}`, '--log-level', 'error'],
        { NODE_OPTIONS: MEMORY_NODE_OPTIONS },
      );
      const port = portIn((await started).listen);
      let next = 0;
      await Promise.all(
        Array.from({ length: 32 }, async () => {
          while (next++ < 20_000) {
            const client = connect({ host: '127.0.0.1', port, fields: { 'Env-Id': 'feature-1' } });
            const reply = readAll(client);
            client.end('x');
            if ((await reply) !== 'xbye') throw new Error('relay failed');
          }
        }),
      );
      // The peak since it started (VmHWM), not only what it holds now.
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      const peakMib = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1]) / 1024;
      child.kill('SIGTERM');
      expect(peakMib).toBeGreaterThan(0);
      expect(peakMib).toBeLessThan(BOUND_MIB);
    },
    120_000,
  );
});
