// No routing loops: a route to the proxy's own address is refused wherever it comes from, and a
// connection of the proxy's that comes back to it (a name that resolves to the proxy) is closed,
// so one client cannot make the proxy open connections to itself without end.
import { connect } from '@picop/net-wrap';
import { createAdminServer, createProxy } from '@picop/proxy';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../support/servers.js';
import { listen } from './helpers.js';

const closers: Array<() => unknown> = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

describe('routing loops', () => {
  it('a route or default route to its own address is refused at start', async () => {
    const port = await freePort();
    for (const self of [`127.0.0.1:${port}`, `localhost:${port}`, `0.0.0.0:${port}`]) {
      expect(() => createProxy({ listen: `127.0.0.1:${port}`, routes: { loop: self } })).toThrow(
        expect.objectContaining({ code: 'ERR_PICOP_INVALID_ARG' }),
      );
      expect(() => createProxy({ listen: `0.0.0.0:${port}`, defaultRoute: self })).toThrow(
        /this proxy's own address/,
      );
    }
  });

  it('the admin API and the route table refuse it once the port is known (port 0)', async () => {
    const proxy = createProxy({ listen: '127.0.0.1:0', defaultRoute: '127.0.0.1:1' });
    const { port } = await proxy.listen();
    closers.push(() => proxy.close(10));
    const admin = createAdminServer(proxy);
    const adminPort = await listen(admin);
    closers.push(() => admin.close());
    const res = await fetch(`http://127.0.0.1:${adminPort}/routes/loop`, {
      method: 'PUT',
      body: JSON.stringify({ destination: `127.0.0.1:${port}` }),
    });
    expect(res.status).toBe(400);
    expect(proxy.routes.get('loop')).toBeUndefined();
    expect(() => proxy.routes.replace({ loop: `localhost:${port}` })).toThrow(
      /this proxy's own address/,
    );
  });

  it('a connection that comes back to the proxy is closed and counted, once', async () => {
    const proxy = createProxy({ listen: '127.0.0.1:0', propagate: true });
    const { port } = await proxy.listen();
    closers.push(() => proxy.close(10));
    // An address the route table cannot tell is its own (as a DNS name of the proxy would be).
    proxy.routes.set('loop', `[::ffff:127.0.0.1]:${port}`);
    let peak = 0;
    const watch = setInterval(() => {
      peak = Math.max(peak, proxy.connections);
    }, 1);
    try {
      const socket = connect({ host: '127.0.0.1', port, fields: { 'Env-Id': 'loop' } });
      await new Promise((resolve) => socket.on('close', resolve).resume());
    } finally {
      clearInterval(watch);
    }
    expect(proxy.stats().byEnv._unknown?.failed).toMatchObject({ routing_loop: 1 });
    expect(peak).toBeLessThanOrEqual(2);
  });
});
