// The proxy under test: picop-proxy in this process, or, with PICOP_PROXY_ENGINE=haproxy (the
// `proxy-haproxy` vitest project), a real HAProxy running `picop-haproxy`'s configuration and
// haproxy/picop.lua. The same test files run against both through this one interface.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createProxy, type PicopProxy, type ProxyOptions } from '@picop/proxy';
import { parseAddress } from '@picop/routes';
import { afterAll, vi } from 'vitest';
import { freePort, waitForPort } from '../../../test/support/servers.js';
import { haproxyConfig } from '../src/haproxy.js';

export const ON_HAPROXY = process.env.PICOP_PROXY_ENGINE === 'haproxy';
export const HAVE_HAPROXY = spawnSync('haproxy', ['-v']).status === 0;

const LUA = fileURLToPath(new URL('../haproxy/picop.lua', import.meta.url));

/** What both engines count: connections by route label (an Env-Id with a route, _default, ...). */
export interface EngineStats {
  accepted: number;
  failed: number;
  /** Connections relayed now (HAProxy: open now, in the header phase too). */
  active: number;
  byEnv: Record<string, { accepted: number; failed: Record<string, number> }>;
}

export interface TestProxy {
  readonly port: number;
  stats(): Promise<EngineStats>;
  /** Connections open now, in the header phase or relayed. */
  connections(): Promise<number>;
  /** The Prometheus text of PiCoP's counters (`picop_proxy_*`). */
  metrics(): Promise<string>;
  /** Stops accepting; resolves once open connections have ended, or are cut after `graceMs`. */
  close(graceMs: number): Promise<void>;
  /**
   * Runs `change` (a write to the routes file) and resolves once the proxy has read the file:
   * applied (`'reload'`) or refused (`'error'`).
   */
  reread(change: () => void, outcome: 'reload' | 'error'): Promise<void>;
  /** picop-proxy itself; undefined on HAProxy. */
  readonly node: PicopProxy | undefined;
}

/** The proxy of `options` on the engine under test, listening (port 0: a free one). */
export function startProxy(options: ProxyOptions): Promise<TestProxy> {
  return ON_HAPROXY ? startHaproxy(options) : startNode(options);
}

async function startNode(options: ProxyOptions): Promise<TestProxy> {
  const proxy = createProxy(options);
  const { port } = await proxy.listen();
  return {
    port,
    node: proxy,
    stats: async () => {
      const { accepted, failed, active, byEnv } = proxy.stats();
      return {
        accepted,
        failed,
        active,
        byEnv: Object.fromEntries(
          Object.entries(byEnv).map(([env, s]) => [
            env,
            { accepted: s.accepted, failed: s.failed },
          ]),
        ),
      };
    },
    connections: async () => proxy.connections,
    metrics: () => proxy.metrics(),
    close: (graceMs) => proxy.close(graceMs),
    async reread(change, outcome) {
      if (proxy.routesFile === undefined) throw new Error('no routes file');
      const read = once(proxy.routesFile, outcome);
      change();
      await read;
    },
  };
}

/**
 * HAProxy (as `picop-haproxy` configures it, with its admin frontend for the counters) running
 * `options`.
 */
export async function startHaproxy(options: ProxyOptions): Promise<TestProxy> {
  const listen = parseAddress(options.listen, 'listen', { allowPortZero: true });
  const port = listen.port === 0 ? await freePort() : listen.port;
  const admin = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'picop-haproxy-'));
  const { logger: _, registry: __, ...settings } = options;
  writeFileSync(
    join(dir, 'haproxy.cfg'),
    haproxyConfig(
      {
        // This machine's file limit (20,000) is below what HAProxy wants for picop-proxy's default.
        maxConnections: 4000,
        ...settings,
        listen: { ...listen, port },
        admin: { host: '127.0.0.1', port: admin },
      },
      LUA,
    ),
  );
  const child = spawn('haproxy', ['-f', join(dir, 'haproxy.cfg'), '-db', '-q'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  running.add(child);
  child.on('exit', () => running.delete(child));
  // HAProxy binds every frontend before it serves any: the admin one answering means both listen.
  await waitForPort(admin, 15_000, child);
  const get = async (path: string) => (await fetch(`http://127.0.0.1:${admin}${path}`)).text();
  const stopped = () => child.exitCode !== null || child.signalCode !== null || stopping;
  let stopping = false;
  const counter = async (name: string) => Number(metric(await get('/metrics/picop'), name) ?? 0);
  const stats = async (): Promise<EngineStats> =>
    // Its counters go with its process: once stopped, none is open and nothing else is known.
    stopped()
      ? { accepted: 0, failed: 0, active: 0, byEnv: {} }
      : statsOf(await get('/metrics/picop'), await get('/metrics'));
  return {
    port,
    node: undefined,
    stats,
    connections: async () => (await stats()).active,
    // PiCoP's counters, then HAProxy's own (its exporter), as a scrape of both would see them.
    metrics: async () => `${await get('/metrics/picop')}${await get('/metrics')}`,
    async close(graceMs) {
      if (stopped()) return;
      stopping = true;
      const exited = once(child, 'exit');
      // Soft stop: the listeners close at once, open connections go on; cut at the grace period.
      child.kill('SIGUSR1');
      const cut = setTimeout(() => child.kill('SIGTERM'), graceMs);
      await exited;
      clearTimeout(cut);
    },
    async reread(change, outcome) {
      const name =
        outcome === 'reload'
          ? 'picop_proxy_routes_reloads_total'
          : 'picop_proxy_routes_reload_failures_total';
      const before = await counter(name);
      change();
      // The action re-reads the file once a second: HAProxy has no event to wait on.
      await vi.waitFor(
        async () => {
          if ((await counter(name)) <= before) throw new Error(`no ${outcome} yet`);
        },
        { timeout: 10_000, interval: 50 },
      );
    },
  };
}

// HAProxy processes a test left running (one that failed before close()).
const running = new Set<ChildProcess>();
afterAll(() => {
  for (const child of running) child.kill('SIGKILL');
});

/** The value of the sample `name` (with its labels, as written) in Prometheus text. */
function metric(text: string, name: string): string | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name} `)) return line.slice(name.length + 1);
  }
  return undefined;
}

function statsOf(picop: string, exporter: string): EngineStats {
  const stats: EngineStats = { accepted: 0, failed: 0, active: 0, byEnv: {} };
  const of = (env: string) => {
    stats.byEnv[env] ??= { accepted: 0, failed: {} };
    return stats.byEnv[env];
  };
  for (const [, env, n] of picop.matchAll(
    /^picop_proxy_connections_accepted_total\{env="([^"]*)"\} (\d+)$/gm,
  )) {
    of(env as string).accepted = Number(n);
    stats.accepted += Number(n);
  }
  for (const [, env, reason, n] of picop.matchAll(
    /^picop_proxy_connections_failed_total\{env="([^"]*)",reason="([^"]*)"\} (\d+)$/gm,
  )) {
    of(env as string).failed[reason as string] = Number(n);
    stats.failed += Number(n);
  }
  stats.active = Number(metric(exporter, 'haproxy_frontend_current_sessions{proxy="picop"}') ?? 0);
  return stats;
}
