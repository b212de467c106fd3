// The wrapped libraries' lifecycle and events, kept: a constructor that throws opens nothing, and
// @picop/pg's counters and 'error' events are node-postgres's own, over every environment's pool.
import { once } from 'node:events';
import net from 'node:net';
import { connect as mqttConnect } from '@picop/mqtt';
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
      '@picop/redis, maxClients 0',
      () => new Redis({ host: '127.0.0.1', port, picop: { maxClients: 0 } }),
    ],
    [
      '@picop/mqtt, maxConnections 0',
      () => mqttConnect(`mqtt://127.0.0.1:${port}`, { picop: { maxConnections: 0 } }),
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
