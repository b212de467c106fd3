import { spawn } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import { fileURLToPath } from 'node:url';
import {
  createAdminServer,
  createProxy,
  type PicopProxy,
  registerWithController,
} from '@picop/proxy';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selfSignedCert } from '../../../test/support/otel-and-tls.js';
import { listen } from '../../../test/support/servers.js';

const CLI = fileURLToPath(new URL('../bin/picop-proxy.js', import.meta.url));

function get(url: string, headers: Record<string, string> = {}, ca?: Buffer) {
  const client = url.startsWith('https') ? https : http;
  return new Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }>(
    (resolve, reject) => {
      client
        .get(url, { headers, ca }, (res) => {
          let body = '';
          res.on('data', (d) => {
            body += d;
          });
          res.on('end', () =>
            resolve({ status: res.statusCode as number, body, headers: res.headers }),
          );
        })
        .on('error', reject);
    },
  );
}

describe('admin API security', () => {
  let proxy: PicopProxy;
  beforeAll(async () => {
    proxy = createProxy({ listen: '127.0.0.1:0', defaultRoute: '127.0.0.1:1' });
    await proxy.listen();
  });
  afterAll(() => proxy.close(50));

  it('with a token, refuses requests without it (401, counted) but health and metrics', async () => {
    const admin = createAdminServer(proxy, { token: 's3cret' });
    const base = `http://127.0.0.1:${await listen(admin)}`;
    const none = await get(`${base}/routes`);
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer');
    expect(JSON.parse(none.body).error.code).toBe('ERR_UNAUTHORIZED');
    expect((await get(`${base}/admin/env/x`, { authorization: 'Bearer s3creT' })).status).toBe(401);
    expect((await get(`${base}/routes`, { authorization: 'Bearer s3cret' })).status).toBe(200);
    expect((await get(`${base}/healthz`)).status).toBe(200);
    const metrics = await get(`${base}/metrics`);
    expect(metrics.body).toContain('picop_proxy_admin_unauthorized_total 2');
    admin.close();
  });

  it('serves HTTPS with a certificate', async () => {
    const { key, cert } = selfSignedCert();
    const admin = createAdminServer(proxy, { tls: { key, cert } });
    const port = await listen(admin);
    expect((await get(`https://127.0.0.1:${port}/healthz`, {}, cert)).status).toBe(200);
    admin.close();
  });

  it('the command refuses a non-loopback admin address without a token, unless told', async () => {
    const run = (args: string[], env: Record<string, string> = {}) => {
      const child = spawn(process.execPath, [CLI, '--listen', '127.0.0.1:0', ...args], {
        env: { PATH: process.env.PATH, ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (d) => {
        stderr += d;
      });
      const started = new Promise<boolean>((resolve) => {
        child.stdout.on('data', (d) => String(d).includes('listening on') && resolve(true));
        child.on('exit', () => resolve(false));
      });
      return { child, started, stderr: () => stderr };
    };
    const open = run(['--admin', '0.0.0.0:0']);
    expect(await open.started).toBe(false);
    expect(open.child.exitCode).toBe(2);
    expect(open.stderr()).toMatch(/--admin-token-file/);
    for (const ok of [
      run(['--admin', '0.0.0.0:0', '--admin-insecure']),
      run(['--admin', '0.0.0.0:0'], { PICOP_PROXY_ADMIN_TOKEN: 't' }),
    ]) {
      expect(await ok.started).toBe(true);
      ok.child.kill('SIGTERM');
      await once(ok.child, 'exit');
    }
  });

  it("registers with the authors' controller, retrying until it accepts", async () => {
    const calls: string[] = [];
    const controller = http.createServer((req, res) => {
      calls.push(`${req.method} ${req.url}`);
      res.statusCode = calls.length < 3 ? 503 : 200;
      res.end();
    });
    const port = await listen(controller);
    const registration = registerWithController(`http://127.0.0.1:${port}/`, 'proxy-b', {
      intervalMs: 20,
    });
    await registration.registered;
    expect(calls).toEqual(Array(3).fill('PUT /proxy/proxy-b/activate'));
    registration.stop();

    // The command does the same with --controller-url and --id.
    const asked = once(controller, 'request');
    const child = spawn(
      process.execPath,
      [
        CLI,
        '--listen',
        '127.0.0.1:0',
        '--controller-url',
        `http://127.0.0.1:${port}`,
        '--id',
        'p2',
      ],
      { stdio: 'ignore' },
    );
    const [req] = (await asked) as [http.IncomingMessage];
    expect(`${req.method} ${req.url}`).toBe('PUT /proxy/p2/activate');
    child.kill('SIGTERM');
    await once(child, 'exit');
    controller.close();
  });
});
