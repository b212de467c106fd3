// The baseline is reserved: environments holding every pool (slow uploads through the gateway)
// never make a baseline request wait or fail; one environment's flood is answered 503 for it alone.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { createGateway, type PicopGateway } from '@picop/gateway';
import { acceptPicop } from '@picop/net-wrap';
import { getEnvId } from '@picop/propagator';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useContextManager } from '../support/otel-and-tls.js';
import { listen } from './helpers.js';

useContextManager();

/** Opens a request of `envId` whose 1 MB body never comes: it holds a pool until closed. */
function heldUpload(port: number, envId: string): { socket: net.Socket; answer: Promise<string> } {
  const socket = net.connect(port, '127.0.0.1');
  socket.write(
    `POST / HTTP/1.1\r\nhost: gw\r\nenv-id: ${envId}\r\ncontent-length: 1000000\r\n\r\nx`,
  );
  let text = '';
  socket.on('data', (d) => {
    text += d;
  });
  socket.on('error', () => {});
  const answer = new Promise<string>((resolve) => {
    socket.on('data', () => {
      if (text.includes('\r\n\r\n')) resolve(text);
    });
    socket.on('close', () => resolve(text));
  });
  return { socket, answer };
}

describe('the baseline is reserved', () => {
  let service: http.Server;
  let upstream: string;
  const arrived: string[] = [];
  let onArrival: () => void = () => {};
  beforeAll(async () => {
    service = acceptPicop(
      http.createServer((req, res) => {
        arrived.push(getEnvId() ?? 'baseline');
        onArrival();
        req.on('end', () => res.end(getEnvId() ?? 'baseline'));
        req.resume();
      }),
    );
    upstream = `127.0.0.1:${await listen(service)}`;
  });
  afterAll(() => {
    service.closeAllConnections();
    service.close();
  });
  const arrivals = (n: number) =>
    new Promise<void>((resolve) => {
      const check = () => {
        if (arrived.length >= n) resolve();
      };
      onArrival = check;
      check();
    });

  async function withGateway<T>(
    options: Partial<Parameters<typeof createGateway>[0]>,
    fn: (port: number, gateway: PicopGateway) => Promise<T>,
  ): Promise<T> {
    const gateway = createGateway({ listen: '127.0.0.1:0', upstream, ...options });
    const { port } = await gateway.listen();
    try {
      return await fn(port, gateway);
    } finally {
      await gateway.close(50);
    }
  }

  it('eight environments holding uploads against --max-pools 4: the baseline answers 200', async () => {
    await withGateway({ allow: ['feature-*'], maxPools: 4 }, async (port) => {
      arrived.length = 0;
      const held = Array.from({ length: 8 }, (_, i) => heldUpload(port, `feature-${i}`));
      // Four reach the service; the four others are answered 503 for want of a pool.
      await arrivals(4);
      const waiting = held.filter((_, i) => !arrived.includes(`feature-${i}`));
      expect(waiting).toHaveLength(4);
      for (const answer of await Promise.all(waiting.map((h) => h.answer))) {
        expect(answer).toMatch(/^HTTP\/1\.1 503 .*ERR_PICOP_TOO_MANY_CONTEXTS/s);
      }
      const baseline = await request(`http://127.0.0.1:${port}/`);
      expect(baseline.statusCode).toBe(200);
      expect(await baseline.body.text()).toBe('baseline');
      for (const h of held) h.socket.destroy();
    });
  });

  it("one environment's flood gets 503 ERR_PICOP_ENV_BUSY, for it alone", async () => {
    await withGateway({ maxEnvRequests: 2 }, async (port) => {
      arrived.length = 0;
      const held = [heldUpload(port, 'feature-1'), heldUpload(port, 'feature-1')];
      await arrivals(2);
      const third = await request(`http://127.0.0.1:${port}/`, {
        headers: { 'env-id': 'feature-1' },
      });
      expect(third.statusCode).toBe(503);
      expect(await third.body.json()).toMatchObject({ error: { code: 'ERR_PICOP_ENV_BUSY' } });
      const other = await request(`http://127.0.0.1:${port}/`, {
        headers: { 'env-id': 'feature-2' },
      });
      expect(await other.body.text()).toBe('feature-2');
      const baseline = await request(`http://127.0.0.1:${port}/`);
      expect(await baseline.body.text()).toBe('baseline');
      for (const h of held) h.socket.destroy();
    });
  });
});

describe('picop-gateway at start', () => {
  const bin = fileURLToPath(
    new URL('../../packages/gateway/bin/picop-gateway.js', import.meta.url),
  );

  /** The gateway's log lines until its start-up line. */
  async function startLines(args: string[], env: NodeJS.ProcessEnv = {}) {
    const child = spawn(
      process.execPath,
      [bin, '--listen', '127.0.0.1:0', '--upstream', '127.0.0.1:1', ...args],
      {
        env: { ...process.env, ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    let err = '';
    child.stderr.on('data', (d) => {
      err += d;
    });
    const started = new Promise<void>((resolve) => {
      child.stdout.on('data', () => {
        if (out.includes('listening on')) resolve();
      });
    });
    const exited = once(child, 'exit').then(([code]) => code as number);
    const result = await Promise.race([started.then(() => undefined), exited]);
    child.kill();
    return { code: result, out, err };
  }

  it.each([[[]], [['--allow', '**']], [['--allow', 'feature-1', '--allow', '*']]])(
    'warns that anyone may pick any environment with %j and no secret',
    async (args) => {
      const { out } = await startLines(args);
      expect(out).toContain('any client may pick any environment');
    },
  );

  it('does not warn with a secret', async () => {
    const { out } = await startLines(['--allow', '**'], { PICOP_GATEWAY_TOKEN: 'a-secret' });
    expect(out).not.toContain('any client may pick any environment');
  });

  it('refuses to start on a secret variable set but empty (exit 2)', async () => {
    for (const variable of ['PICOP_GATEWAY_TOKEN', 'PICOP_GATEWAY_COOKIE_KEY']) {
      const { code, err } = await startLines([], { [variable]: ' ' });
      expect(code).toBe(2);
      expect(err).toContain(`${variable} is set but empty`);
    }
  });
});
