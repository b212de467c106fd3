import { createProxy, type PicopProxy } from '@picop/proxy';
import { afterAll, beforeAll } from 'vitest';
import {
  type ExtraServer,
  PG_HOST,
  PG_PORT,
  startPostgres,
} from '../../../test/support/servers.js';

/** The baseline's PostgreSQL, and feature-1's, started for the file, behind one picop-proxy. */
export interface PgPair {
  /** feature-1's server. */
  second: ExtraServer;
  /** The proxy's port: feature-1 to `second`, everything else to the baseline. */
  port: number;
}

/**
 * Starts feature-1's PostgreSQL and a proxy (header required) before the file's tests, and
 * stops them after. Read the fields inside tests or hooks.
 */
export function usePgPair(): PgPair {
  const pair = {} as PgPair;
  let proxy: PicopProxy | undefined;
  beforeAll(async () => {
    pair.second = await startPostgres();
    proxy = createProxy({
      listen: '127.0.0.1:0',
      defaultRoute: `${PG_HOST}:${PG_PORT}`,
      routes: { 'feature-1': `127.0.0.1:${pair.second.port}` },
    });
    pair.port = (await proxy.listen()).port;
  }, 120_000);
  afterAll(async () => {
    await proxy?.close(100);
    await pair.second?.stop();
  });
  return pair;
}
