// postgres.js's `socket` option carries the header: one `sql` per environment (see the README).
import type { Socket } from 'node:net';
import { connect } from '@picop/net-wrap';
import { createProxy, type PicopProxy } from '@picop/proxy';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ExtraServer,
  PG_HOST,
  PG_PORT,
  startPostgres,
} from '../../../test/support/servers.js';

describe('postgres.js through picop-proxy, with a header socket', () => {
  let second: ExtraServer;
  let proxy: PicopProxy;
  let port: number;
  beforeAll(async () => {
    second = await startPostgres();
    proxy = createProxy({
      listen: '127.0.0.1:0',
      defaultRoute: `${PG_HOST}:${PG_PORT}`,
      routes: { 'feature-1': `127.0.0.1:${second.port}` },
    });
    port = (await proxy.listen()).port;
  }, 120_000);
  afterAll(async () => {
    await proxy?.close(100);
    await second?.stop();
  });

  /**
   * The README's recipe: an `sql` whose connections start with `envId`'s header. postgres.js's
   * typings do not declare its `socket` option, hence the options object outside the call.
   */
  const sqlFor = (envId: string) => {
    const options = {
      host: '127.0.0.1',
      port,
      user: 'postgres',
      database: 'postgres',
      socket: ({ host: [host], port: [p] }: { host: [string]; port: [number] }) =>
        new Promise<Socket>((resolve, reject) => {
          const socket = connect({ host, port: p, fields: { 'Env-Id': envId } });
          socket.once('connect', () => resolve(socket)).once('error', reject);
        }),
    };
    return postgres(options);
  };

  it("routes each sql's queries to its environment", async () => {
    const feature1 = sqlFor('feature-1');
    const main = sqlFor('main');
    const [[a], [b]] = await Promise.all([
      feature1`SELECT inet_server_port() AS port`,
      main`SELECT inet_server_port() AS port`,
    ]);
    expect([a?.port, b?.port]).toEqual([second.port, PG_PORT]);
    await Promise.all([feature1.end(), main.end()]);
  });
});
