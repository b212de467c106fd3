// The wrapped libraries' lifecycle and events, kept: a constructor that throws opens nothing, and
// @picop/pg's counters and 'error' events are node-postgres's own, over every environment's pool.
import { once } from 'node:events';
import net from 'node:net';
import { connect as mqttConnect, type PicopMqttClient } from '@picop/mqtt';
import { Pool } from '@picop/pg';
import { withEnvId } from '@picop/propagator';
import { Redis } from '@picop/redis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useContextManager } from './support/otel-and-tls.js';
import { PG_PORT } from './support/servers.js';

useContextManager();

describe('a constructor that throws opens nothing', () => {
  let server: net.Server;
  let port: number;
  // The client ports of the connections the server accepted.
  const accepted: number[] = [];
  let onAccept: () => void = () => {};
  beforeAll(async () => {
    server = net.createServer((socket) => {
      accepted.push(socket.remotePort as number);
      socket.destroy();
      onAccept();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as net.AddressInfo).port;
  });
  afterAll(() => server.close());

  /**
   * Once the work the constructor queued has run (one turn of the event loop), a probe
   * connection: when the server has accepted it, it has accepted any opened before it. Resolves
   * with the other connections accepted meanwhile.
   */
  async function othersAccepted(before: number): Promise<number[]> {
    await new Promise((resolve) => setImmediate(resolve));
    const probe = net.connect(port, '127.0.0.1');
    await once(probe, 'connect');
    const probePort = probe.localPort as number;
    await new Promise<void>((resolve) => {
      onAccept = () => {
        if (accepted.includes(probePort)) resolve();
      };
      onAccept();
    });
    probe.destroy();
    return accepted.slice(before).filter((p) => p !== probePort);
  }

  it.each([
    [
      '@picop/redis, maxPools 0',
      () => new Redis({ host: '127.0.0.1', port, picop: { maxPools: 0 } }),
    ],
    [
      '@picop/redis, maxPools and its old name maxClients',
      () => new Redis({ host: '127.0.0.1', port, picop: { maxPools: 2, maxClients: 2 } }),
    ],
    [
      '@picop/redis, a routes file that does not exist',
      () =>
        new Redis({ host: '127.0.0.1', port, picop: { routes: { file: '/nonexistent.json' } } }),
    ],
    [
      '@picop/mqtt, maxPools 0',
      () => mqttConnect(`mqtt://127.0.0.1:${port}`, { picop: { maxPools: 0 } }),
    ],
    [
      '@picop/mqtt, idleTimeoutMs -1',
      () => mqttConnect(`mqtt://127.0.0.1:${port}`, { picop: { idleTimeoutMs: -1 } }),
    ],
    [
      '@picop/mqtt, selective without MQTT 5',
      () => mqttConnect(`mqtt://127.0.0.1:${port}`, { picop: { selective: true } }),
    ],
  ])('%s', async (_name, construct) => {
    const before = accepted.length;
    expect(construct).toThrow(expect.objectContaining({ code: 'ERR_PICOP_INVALID_ARG' }));
    expect(await othersAccepted(before)).toEqual([]);
  });
});

describe("@picop/pg keeps node-postgres's counters and events", () => {
  const login = { host: '127.0.0.1', port: PG_PORT, user: 'postgres', database: 'postgres' };
  // Straight to PostgreSQL (no proxy): routes with no route, so no header; a pool per environment.
  const picop = { routes: { table: {} } };

  it('totalCount, idleCount and waitingCount add up every environment’s pool', async () => {
    const pool = new Pool({ ...login, picop });
    try {
      const client = await withEnvId('feature-1', () => pool.connect());
      expect([pool.totalCount, pool.idleCount, pool.waitingCount]).toEqual([1, 0, 0]);
      client.release();
      expect([pool.totalCount, pool.idleCount]).toEqual([1, 1]);
      const own = await pool.connect();
      expect(pool.totalCount).toBe(2);
      own.release();
    } finally {
      await pool.end();
    }
  });

  it("an idle client's error is (err, client, envId), as node-postgres's (err, client) with the Env-Id after", async () => {
    const pool = new Pool({ ...login, picop });
    const admin = new pg.Client(login);
    await admin.connect();
    try {
      const client = await withEnvId('feature-1', () => pool.connect());
      const pid = (await client.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
      client.release();
      const errored = once(pool, 'error');
      await admin.query('SELECT pg_terminate_backend($1)', [pid]);
      const [err, from, envId] = await errored;
      expect(err).toBeInstanceOf(Error);
      expect(from).toBe(client);
      expect(envId).toBe('feature-1');
    } finally {
      await admin.end();
      await pool.end();
    }
  });
});

describe('one name and one shape for the per-environment pools', () => {
  const login = { host: '127.0.0.1', port: PG_PORT, user: 'postgres', database: 'postgres' };

  it('every wrapper reads maxPools; the old names still work, with one DeprecationWarning', async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    const redis = new Redis({ lazyConnect: true, picop: { maxClients: 1 } });
    const again = new Redis({ lazyConnect: true, picop: { maxClients: 1 } });
    const mqtt = mqttConnect('mqtt://127.0.0.1:1883', {
      picop: { maxConnections: 1, routes: { table: {} } },
    });
    try {
      // One busy environment fills a cap of 1: a second is refused, so the old name was read.
      await withEnvId('feature-1', () => mqtt.subscribeAsync(`picop-dep-${process.pid}`));
      await expect(withEnvId('feature-2', () => mqtt.publishAsync('x', 'x'))).rejects.toMatchObject(
        { code: 'ERR_PICOP_TOO_MANY_CONTEXTS' },
      );
      await new Promise(setImmediate);
      const ours = warnings.filter((w) => (w as { code?: string }).code === 'PICOP_DEP_MAX_POOLS');
      expect(ours.map((w) => w.message)).toEqual([
        expect.stringContaining('@picop/redis: `picop.maxClients` is deprecated'),
        expect.stringContaining('@picop/mqtt: `picop.maxConnections` is deprecated'),
      ]);
    } finally {
      process.off('warning', onWarning);
      redis.disconnect();
      again.disconnect();
      await mqtt.endAsync();
    }
  });

  it('pools has size, created, evicted, expired and byEnvId() in every wrapper', async () => {
    const pool = new Pool({ ...login, picop: { routes: { table: {} } } });
    try {
      await withEnvId('feature-1', () => pool.query('SELECT 1'));
      await pool.query('SELECT 1');
      const pools = pool.pools;
      expect([pools?.size, pools?.created, pools?.evicted, pools?.expired]).toEqual([1, 1, 0, 0]);
      const byEnv = [...(pools?.byEnvId() ?? [])];
      expect(byEnv.map(([envId]) => envId)).toEqual(['feature-1']);
      // The per-environment view: node-postgres's own counters of feature-1's pool.
      expect(byEnv[0]?.[1].totalCount).toBe(1);
    } finally {
      await pool.end();
    }
  });

  it('@picop/pg end() twice: the second is refused as node-postgres refuses it, nothing crashes', async () => {
    const pool = new Pool({ ...login, picop: { routes: { table: {} } } });
    await withEnvId('feature-1', () => pool.query('SELECT 1'));
    const first = pool.end();
    expect(pool.ending).toBe(true);
    await expect(pool.end()).rejects.toThrow('Called end on pool more than once');
    await first;
    expect(pool.pools?.size).toBe(0);
  });
});

describe("@picop/mqtt follows mqtt.js's lifecycle", () => {
  it('end(true) then reconnect(): the baseline and every environment publish again', async () => {
    const client = mqttConnect('mqtt://127.0.0.1:1883', {
      protocolVersion: 5,
      // Straight to Mosquitto: no route, so no header.
      picop: { routes: { table: {} } },
    }) as PicopMqttClient;
    const connected = () => new Promise((resolve) => client.once('connect', resolve));
    const topic = `picop-reconnect-${process.pid}`;
    const reader = mqttConnect('mqtt://127.0.0.1:1883', { picop: false });
    try {
      await connected();
      await reader.subscribeAsync(`${topic}/#`);
      const received: string[] = [];
      const all = new Promise<void>((resolve) =>
        reader.on('message', (_t, payload) => {
          received.push(payload.toString());
          if (received.length === 3) resolve();
        }),
      );
      await withEnvId('feature-1', () => client.publishAsync(`${topic}/a`, 'before'));
      await client.endAsync(true);
      await expect(
        withEnvId('feature-1', () => client.publishAsync(`${topic}/b`, 'ended')),
      ).rejects.toMatchObject({ code: 'ERR_PICOP_INVALID_STATE' });
      client.reconnect();
      await connected();
      await withEnvId('feature-1', () => client.publishAsync(`${topic}/c`, 'feature-1 after'));
      await client.publishAsync(`${topic}/d`, 'baseline after');
      await all;
      expect(received.sort()).toEqual(['baseline after', 'before', 'feature-1 after']);
      expect(client.pools.size).toBe(1);
    } finally {
      await client.endAsync();
      await reader.endAsync();
    }
  });
});
