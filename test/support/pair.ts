// The fixture of every "two environments, two servers" test: the baseline's server (the machine's
// own) and feature-1's (started for the file), behind one picop-proxy that requires the header.
import { createProxy, type PicopProxy } from '@picop/proxy';
import { afterAll, beforeAll } from 'vitest';
import type { ExtraServer } from './servers.js';

/** feature-1's server and the proxy in front of both. Read the fields inside tests or hooks. */
export interface ServerPair {
  /** feature-1's server. */
  second: ExtraServer;
  /** The proxy's port: feature-1 to `second`, everything else to the baseline. */
  port: number;
}

/**
 * Starts feature-1's server with `start` and a proxy (header required, default route `baseline`,
 * `"host:port"`) before the file's tests, and stops them after.
 */
export function useServerPair(start: () => Promise<ExtraServer>, baseline: string): ServerPair {
  const pair = {} as ServerPair;
  let proxy: PicopProxy | undefined;
  beforeAll(async () => {
    pair.second = await start();
    proxy = createProxy({
      listen: '127.0.0.1:0',
      defaultRoute: baseline,
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
