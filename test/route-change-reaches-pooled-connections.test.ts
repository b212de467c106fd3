// A route added or changed while a client's pooled connection is open reaches that connection:
// picop-proxy closes it once quiet (never mid-exchange), the client reconnects, and from then on
// every command lands on the new route. Clients: @picop/redis (ioredis) and @picop/mysql (mysql2
// pool), each under steady load, read back by asking the server which port it listens on.
import { createPool } from '@picop/mysql';
import { withEnvId } from '@picop/propagator';
import { createProxy, type PicopProxy } from '@picop/proxy';
import { Redis } from '@picop/redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useContextManager } from './support/otel-and-tls.js';
import {
  type ExtraServer,
  MYSQL_PORT,
  REDIS_PORT,
  startMariadb,
  startRedis,
} from './support/servers.js';

useContextManager();

const LOAD_INTERVAL_MS = 25;
const QUIET_MS = 10;

/**
 * Steady load in `envId`: one call every LOAD_INTERVAL_MS until `stop()`; each answers the port
 * of the server that served it. Resolves with every answer, in order.
 */
function steadyLoad(envId: string, call: () => Promise<number>) {
  const ports: number[] = [];
  let running = true;
  let onAnswer: () => void = () => {};
  const done = (async () => {
    while (running) {
      ports.push(await withEnvId(envId, call));
      onAnswer();
      // pacing: the load generator's rate, not synchronisation
      await new Promise((r) => setTimeout(r, LOAD_INTERVAL_MS));
    }
  })();
  return {
    ports,
    /** Resolves once a call was answered by `port`. */
    reached: (port: number) =>
      new Promise<void>((resolve) => {
        onAnswer = () => {
          if (ports.includes(port)) resolve();
        };
        onAnswer();
      }),
    stop: async () => {
      running = false;
      await done;
      return ports;
    },
  };
}

/** The answers after the first one from `port`: the switch happened once and stayed. */
function afterSwitch(ports: number[], port: number): number[] {
  return ports.slice(ports.indexOf(port));
}

describe('a route change reaches pooled connections', () => {
  let proxy: PicopProxy;
  let proxyPort: number;
  let redis2: ExtraServer;
  let mysql2: ExtraServer;
  beforeAll(async () => {
    [redis2, mysql2] = await Promise.all([startRedis(), startMariadb()]);
  });
  afterAll(async () => {
    await Promise.all([redis2?.stop(), mysql2?.stop()]);
  });

  async function startProxy(defaultPort: number, routes: Record<string, string> = {}) {
    proxy = createProxy({
      listen: '127.0.0.1:0',
      defaultRoute: `127.0.0.1:${defaultPort}`,
      routes,
      rerouteQuietMs: QUIET_MS,
    });
    proxyPort = (await proxy.listen()).port;
  }

  it('ioredis: feature-3 added while its connection is open; feature-1 untouched', async () => {
    await startProxy(REDIS_PORT, { 'feature-1': `127.0.0.1:${redis2.port}` });
    const redis = new Redis({ host: '127.0.0.1', port: proxyPort });
    const portOf = async () => Number(/tcp_port:(\d+)/.exec(await redis.info('server'))?.[1]);
    try {
      const f1Before = await withEnvId('feature-1', () => redis.client('ID'));
      const load = steadyLoad('feature-3', portOf);
      await load.reached(REDIS_PORT);
      proxy.routes.set('feature-3', `127.0.0.1:${redis2.port}`);
      await load.reached(redis2.port);
      const ports = await load.stop();
      expect(ports[0]).toBe(REDIS_PORT);
      expect(new Set(afterSwitch(ports, redis2.port))).toEqual(new Set([redis2.port]));
      // feature-1's route did not change: its connection was left alone.
      expect(await withEnvId('feature-1', () => redis.client('ID'))).toBe(f1Before);
      expect(proxy.stats().byEnv._default?.failed).toMatchObject({ rerouted: 1 });
    } finally {
      redis.disconnect();
      await proxy.close(10);
    }
  });

  it('mysql2 pool: feature-3 added under load, every query after the switch on the new route', async () => {
    await startProxy(MYSQL_PORT);
    const pool = createPool({
      host: '127.0.0.1',
      port: proxyPort,
      user: 'root',
      connectionLimit: 2,
    });
    const portOf = async () => {
      const [rows] = await pool.query('SELECT @@port AS port');
      return Number((rows as Array<{ port: number }>)[0]?.port);
    };
    try {
      const load = steadyLoad('feature-3', portOf);
      await load.reached(MYSQL_PORT);
      proxy.routes.set('feature-3', `127.0.0.1:${mysql2.port}`);
      await load.reached(mysql2.port);
      const ports = await load.stop();
      expect(new Set(afterSwitch(ports, mysql2.port))).toEqual(new Set([mysql2.port]));
    } finally {
      await pool.end();
      await proxy.close(10);
    }
  });
});
