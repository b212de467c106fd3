import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { acceptPicop } from '@picop/net-wrap';
import { getEnvId } from '@picop/propagator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useContextManager } from '../../../test/support/otel-and-tls.js';

useContextManager();

const bin = fileURLToPath(new URL('../bin/picop-gateway.js', import.meta.url));
const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const run = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  promisify(execFile)(process.execPath, [bin, ...args], { env: { ...process.env, ...env } }).then(
    (r) => ({ code: 0, ...r }),
    (err: { code: number; stdout: string; stderr: string }) => err,
  );

describe('picop-gateway command', () => {
  it('prints --help from the settings table, and --version', async () => {
    const help = await run(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--upstream HOST:PORT');
    expect(help.stdout).toContain('PICOP_GATEWAY_ALLOW');
    expect((await run(['--version'])).stdout.trim()).toBe(pkg.version);
  });

  it('exits 2 naming the closest key for an unknown config-file key', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'picop-gateway-'));
    const file = join(dir, 'config.json');
    writeFileSync(file, JSON.stringify({ listen: '127.0.0.1:0', upstrem: '127.0.0.1:1' }));
    const result = await run(['--config', file]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/unknown key "upstrem".*did you mean "upstream"/);
  });

  it('exits 2 for a bad value, naming its flag or variable', async () => {
    const flag = await run(['--listen', '127.0.0.1:0', '--upstream', 'nope']);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toContain('--upstream');
    const variable = await run(['--listen', '127.0.0.1:0'], {
      PICOP_GATEWAY_UPSTREAM: '127.0.0.1:1',
      PICOP_GATEWAY_MAX_POOLS: '0',
    });
    expect(variable.code).toBe(2);
    expect(variable.stderr).toContain('PICOP_GATEWAY_MAX_POOLS');
  });

  describe('running', () => {
    let service: http.Server;
    let servicePort: number;
    beforeAll(async () => {
      service = acceptPicop(http.createServer((_req, res) => res.end(getEnvId() ?? 'baseline')));
      await new Promise<void>((resolve) => service.listen(0, '127.0.0.1', resolve));
      servicePort = (service.address() as net.AddressInfo).port;
    });
    afterAll(() => {
      service.closeAllConnections();
      service.close();
    });

    it('logs one start-up line, forwards, serves /healthz and /metrics, and drains on SIGTERM', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'picop-gateway-'));
      writeFileSync(join(dir, 'token'), 's3cret\n');
      const child = spawn(
        process.execPath,
        [bin, '--listen', '127.0.0.1:0', '--admin', '0', '--token-file', join(dir, 'token')],
        {
          env: { ...process.env, PICOP_GATEWAY_UPSTREAM: `127.0.0.1:${servicePort}` },
          stdio: ['ignore', 'pipe', 'inherit'],
        },
      );
      const lines: Array<Record<string, unknown>> = [];
      const listening = new Promise<Record<string, unknown>>((resolve) => {
        let buffer = '';
        child.stdout.on('data', (d) => {
          buffer += d;
          for (;;) {
            const eol = buffer.indexOf('\n');
            if (eol < 0) return;
            const line = JSON.parse(buffer.slice(0, eol));
            buffer = buffer.slice(eol + 1);
            lines.push(line);
            if (String(line.msg).startsWith('picop-gateway listening on')) resolve(line);
          }
        });
      });
      const started = await listening;
      expect(started).toMatchObject({
        routes: 0,
        guarded: true,
        upstream: `127.0.0.1:${servicePort}`,
      });
      const get = (url: string, headers: Record<string, string> = {}) =>
        new Promise<{ status: number; body: string }>((resolve, reject) => {
          http
            .get(url, { headers, agent: false }, (res) => {
              let body = '';
              res.on('data', (d) => {
                body += d;
              });
              res.on('end', () => resolve({ status: res.statusCode as number, body }));
            })
            .on('error', reject);
        });
      const base = `http://${started.listen}`;
      expect((await get(base, { 'env-id': 'feature-1' })).body).toBe('baseline');
      expect((await get(base, { 'env-id': 'feature-1', 'picop-token': 's3cret' })).body).toBe(
        'feature-1',
      );
      const admin = `http://${started.admin}`;
      expect(await get(`${admin}/healthz`)).toEqual({ status: 200, body: '{"status":"ok"}' });
      const metrics = (await get(`${admin}/metrics`)).body;
      expect(metrics).toContain('picop_gateway_requests_total{outcome="forwarded"} 2');
      expect(metrics).toContain('picop_gateway_env_id_refused_total{reason="unproven"} 1');
      expect(metrics).toContain('process_open_fds');
      const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(lines.filter((l) => String(l.msg).includes('listening'))).toHaveLength(1);
    });
  });
});
