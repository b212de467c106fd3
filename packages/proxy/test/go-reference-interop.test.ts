// A proxy in the picop-go dialect takes what a service built on the Go reference library sends:
// its bytes, written here as they come off the wire, and a Node client in that dialect.
import net from 'node:net';
import { connect } from '@picop/net-wrap';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SIGNATURE_HEX } from '../../../test/support/header.js';
import { runId } from '../../../test/support/run-id.js';
import {
  type ExtraServer,
  REDIS_HOST,
  REDIS_PORT,
  startRedis,
} from '../../../test/support/servers.js';
import { startProxy, type TestProxy } from './engine.js';
import { RespClient } from './helpers.js';

const SIGNATURE = SIGNATURE_HEX;
const key = `picop:go:${runId()}`;

/** A raw socket that first writes `headerHex`, as the Go reference's header.Format does. */
function goClient(port: number, headerHex: string): RespClient {
  const socket = net.connect({ host: '127.0.0.1', port });
  socket.write(Buffer.from(headerHex, 'hex'));
  return new RespClient(socket);
}

describe('picop-proxy --dialect picop-go with the Go reference traffic', () => {
  let second: ExtraServer;
  let proxy: TestProxy;
  let port: number;
  beforeAll(async () => {
    second = await startRedis();
    proxy = await startProxy({
      listen: '127.0.0.1:0',
      dialect: 'picop-go',
      defaultRoute: `${REDIS_HOST}:${REDIS_PORT}`,
      routes: { 'feature-1': `127.0.0.1:${second.port}` },
    });
    port = proxy.port;
  });
  afterAll(async () => {
    await proxy.close(100);
    await second.stop();
  });

  it('routes the empty header of a Go service with no Env-Id to the default route', async () => {
    const baseline = goClient(port, `${SIGNATURE}0100`);
    expect(await baseline.command('SET', key, 'go-baseline')).toBe('+OK');
    const feature = goClient(
      port,
      `${SIGNATURE}0110${Buffer.from('Env-Id:feature-1').toString('hex')}`,
    );
    expect(await feature.command('SET', key, 'go-feature-1')).toBe('+OK');
    const direct1 = RespClient.direct(REDIS_PORT);
    const direct2 = RespClient.direct(second.port);
    expect(await direct1.command('GET', key)).toBe('go-baseline');
    expect(await direct2.command('GET', key)).toBe('go-feature-1');
    await direct1.command('DEL', key);
    for (const c of [baseline, feature, direct1, direct2]) c.close();
    expect((await proxy.stats()).byEnv['feature-1']?.accepted).toBe(1);
  });

  it('takes a Node client in the picop-go dialect with no Env-Id', async () => {
    const client = new RespClient(connect({ host: '127.0.0.1', port, dialect: 'picop-go' }));
    expect(await client.command('PING')).toBe('+PONG');
    client.close();
  });
});
