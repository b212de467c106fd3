import { type ServerPair, useServerPair } from '../../../test/support/pair.js';
import { PG_HOST, PG_PORT, startPostgres } from '../../../test/support/servers.js';

/** The baseline's PostgreSQL, and feature-1's, started for the file, behind one picop-proxy. */
export type PgPair = ServerPair;

/** {@link useServerPair} for PostgreSQL. */
export function usePgPair(): PgPair {
  return useServerPair(() => startPostgres(), `${PG_HOST}:${PG_PORT}`);
}
