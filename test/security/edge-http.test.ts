// HTTP at the edge as nginx behaves: Expect: 100-continue, 101 only for the protocol asked for,
// absolute-form targets, Host, expiring signed cookies, malformed cookies; the admin APIs' bad
// paths and unresolvable addresses.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createGateway, type PicopGateway, signEnvId } from '@picop/gateway';
import { acceptPicop } from '@picop/net-wrap';
import { getEnvId } from '@picop/propagator';
import { createAdminServer, createProxy } from '@picop/proxy';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCommand } from '../support/commands.js';
import { useContextManager } from '../support/otel-and-tls.js';
import { listen } from './helpers.js';

useContextManager();
const exec = promisify(execFile);

/** Sends `text` on a new connection to `port`; resolves with all the server answered. */
function raw(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let answer = '';
    socket.on('data', (d) => {
      answer += d;
    });
    socket.on('close', () => resolve(answer));
    socket.on('error', reject);
    // Not ended: a client that half-closes is gone for Node's server (its request is aborted).
    socket.write(text);
  });
}

describe('HTTP at the edge', () => {
  let service: http.Server;
  let gateway: PicopGateway;
  let port: number;
  // Without a secret: the host pattern alone picks the environment.
  let open: PicopGateway;
  let openPort: number;
  const KEY = 'k'.repeat(32);
  beforeAll(async () => {
    service = acceptPicop(
      http.createServer((req, res) => {
        const hash = createHash('sha256');
        let bytes = 0;
        req.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
          hash.update(chunk);
        });
        req.on('end', () =>
          res.end(
            JSON.stringify({
              envId: getEnvId() ?? null,
              url: req.url,
              host: req.headers.host,
              bytes,
              sha: hash.digest('hex'),
            }),
          ),
        );
      }),
    );
    // Answers every upgrade with another protocol than the one asked for.
    service.on('upgrade', (_req: http.IncomingMessage, socket: net.Socket) => {
      socket.end('HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: h2c\r\n\r\n');
    });
    gateway = createGateway({
      listen: '127.0.0.1:0',
      upstream: `127.0.0.1:${await listen(service)}`,
      hostPattern: '*.preview.example.com',
      cookie: 'picop-env',
      cookieKey: KEY,
      cookieMaxAge: 3600,
    });
    port = (await gateway.listen()).port;
    open = createGateway({
      listen: '127.0.0.1:0',
      upstream: `127.0.0.1:${(service.address() as net.AddressInfo).port}`,
      hostPattern: '*.preview.example.com',
    });
    openPort = (await open.listen()).port;
  });
  afterAll(async () => {
    await gateway.close(50);
    await open.close(50);
    service.closeAllConnections();
    service.close();
  });

  it('a 2 MB curl --data-binary upload with Expect: 100-continue arrives whole', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'picop-edge-'));
    const file = join(dir, 'body');
    const body = Buffer.alloc(2 * 1024 * 1024, 'x');
    writeFileSync(file, body);
    const { stdout } = await exec('curl', [
      '-sS',
      '-H',
      'Expect: 100-continue',
      '--data-binary',
      `@${file}`,
      `http://127.0.0.1:${port}/upload`,
    ]);
    expect(JSON.parse(stdout)).toMatchObject({
      bytes: body.length,
      sha: createHash('sha256').update(body).digest('hex'),
    });
  });

  it('a 101 to a protocol the client did not ask for is a 502, not a pipe', async () => {
    const answer = await raw(
      port,
      'GET /ws HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n',
    );
    expect(answer).toMatch(/^HTTP\/1\.1 502 /);
    expect(answer).toContain('ERR_PICOP_UPSTREAM');
  });

  it('an absolute-form target names the host: Host is ignored, as RFC 9112 says', async () => {
    const answer = await raw(
      openPort,
      'GET http://feature-1.preview.example.com/orders?id=1 HTTP/1.1\r\nhost: main.preview.example.com\r\nconnection: close\r\n\r\n',
    );
    expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))).toMatchObject({
      envId: 'feature-1',
      url: '/orders?id=1',
      host: 'feature-1.preview.example.com',
    });
  });

  it('HTTP/1.1 without Host is a 400', async () => {
    expect(await raw(port, 'GET / HTTP/1.1\r\nconnection: close\r\n\r\n')).toMatch(
      /^HTTP\/1\.1 400 /,
    );
  });

  it('a signed cookie proves its Env-Id for --cookie-max-age, then no more', async () => {
    const send = async (cookie: string) => {
      const res = await request(`http://127.0.0.1:${port}/`, {
        headers: { cookie: `picop-env=${cookie}` },
      });
      return { status: res.statusCode, ...((await res.body.json()) as { envId: string | null }) };
    };
    expect(await send(signEnvId('feature-1', KEY))).toMatchObject({ envId: 'feature-1' });
    const old = new Date(Date.now() - 3601 * 1000);
    expect(await send(signEnvId('feature-1', KEY, old))).toMatchObject({ envId: null });
    const future = new Date(Date.now() + 3600 * 1000);
    expect(await send(signEnvId('feature-1', KEY, future))).toMatchObject({ envId: null });
  });

  it('a malformed cookie is ignored: the baseline answers, not a 400', async () => {
    for (const cookie of ['a%20b', '%ZZ', 'a b c']) {
      const res = await request(`http://127.0.0.1:${port}/`, {
        headers: { cookie: `picop-env=${cookie}` },
      });
      expect(res.statusCode).toBe(200);
      expect(await res.body.json()).toMatchObject({ envId: null });
    }
  });
});

describe('admin APIs', () => {
  it("a bad % escape in the proxy admin's path is a 400", async () => {
    const proxy = createProxy({ listen: '127.0.0.1:0', defaultRoute: '127.0.0.1:1' });
    const admin = createAdminServer(proxy);
    const adminPort = await listen(admin);
    try {
      const res = await fetch(`http://127.0.0.1:${adminPort}/routes/%ZZ`);
      expect(res.status).toBe(400);
    } finally {
      admin.close();
    }
  });

  it.each([
    ['proxy', ['--listen', '127.0.0.1:0', '--default', '127.0.0.1:1']],
    ['gateway', ['--listen', '127.0.0.1:0', '--upstream', '127.0.0.1:1']],
  ] as const)(
    '%s: an --admin name that does not resolve stops the start, exit 2',
    async (name, args) => {
      const result = await runCommand(name, [...args, '--admin', '127.no-such-host.invalid:9']);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain('cannot resolve');
    },
  );
});
