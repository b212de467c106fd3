// postgres.js's `socket` option carries the header: one `sql` per environment (see the README).
import type { Socket } from 'node:net';
import { connect } from '@picop/net-wrap';
import postgres from 'postgres';
import { describe, expect, it } from 'vitest';
import { PG_PORT } from '../../../test/support/servers.js';
import { usePgPair } from './helpers.js';

describe('postgres.js through picop-proxy, with a header socket', () => {
  const pair = usePgPair();

  /**
   * The README's recipe: an `sql` whose connections start with `envId`'s header. postgres.js's
   * typings do not declare its `socket` option, hence the options object outside the call.
   */
  const sqlFor = (envId: string) => {
    const options = {
      host: '127.0.0.1',
      port: pair.port,
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
    expect([a?.port, b?.port]).toEqual([pair.second.port, PG_PORT]);
    await Promise.all([feature1.end(), main.end()]);
  });
});
