import { once } from 'node:events';
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Routes } from '@picop/routes';
import { afterEach, describe, expect, it } from 'vitest';

const opened: Routes[] = [];
const open = (options: ConstructorParameters<typeof Routes>[0]) => {
  const routes = new Routes(options);
  opened.push(routes);
  return routes;
};
afterEach(() => {
  for (const routes of opened.splice(0)) routes.close();
});

describe('Routes', () => {
  describe('new Routes()', () => {
    it.each([
      [{}],
      [{ table: {}, file: '/x' }],
      [{ url: 'ftp://proxy:9001' }],
      [{ url: 'http://proxy:9001', pollIntervalMs: 0 }],
      [{ table: { 'bad id': '10.0.0.1:80' } }],
      [{ table: { 'feature-1': 'no-port' } }],
    ])('refuses %j with ERR_PICOP_INVALID_ARG', (options) => {
      expect(() => open(options)).toThrow(
        expect.objectContaining({ code: 'ERR_PICOP_INVALID_ARG' }),
      );
    });
  });

  describe('.get()', () => {
    it('answers a table route, with its own header choice, and nothing for others', () => {
      const routes = open({
        table: { 'feature-1': '10.0.0.6:3306', aware: { destination: 'svc:80', header: true } },
      });
      expect(routes.get('feature-1')).toEqual({ host: '10.0.0.6', port: 3306, header: false });
      expect(routes.get('aware')).toEqual({ host: 'svc', port: 80, header: true });
      expect(routes.get('feature-9')).toBeUndefined();
      expect(routes.get(undefined)).toBeUndefined();
    });
  });

  describe('with a file', () => {
    const dir = () => mkdtempSync(join(tmpdir(), 'picop-routes-unit-'));

    it('swaps the routes when the file is replaced, and keeps them when it turns bad', async () => {
      const folder = dir();
      const file = join(folder, 'routes.json');
      writeFileSync(file, JSON.stringify({ 'feature-1': '10.0.0.1:80' }));
      const routes = open({ file });
      expect(routes.get('feature-1')?.host).toBe('10.0.0.1');
      // Replaced by a rename, as a ConfigMap update does.
      const changed = once(routes, 'change');
      writeFileSync(
        join(folder, 'next.json'),
        JSON.stringify([{ env_id: 'feature-1', destination: '10.0.0.2:80' }]),
      );
      renameSync(join(folder, 'next.json'), file);
      await changed;
      expect(routes.get('feature-1')?.host).toBe('10.0.0.2');
      const failed = once(routes, 'error');
      writeFileSync(file, '{ not json');
      await failed;
      expect(routes.failures).toBeGreaterThan(0);
      expect(routes.get('feature-1')?.host).toBe('10.0.0.2');
    });
  });

  describe('with a url', () => {
    it('refuses to route before the first read, then follows the admin API, and keeps the last routes when it fails', async () => {
      let answer: object = { routes: { 'feature-1': '10.0.0.1:80' } };
      let hold = true;
      const held: http.ServerResponse[] = [];
      const admin = http.createServer((req, res) => {
        expect(req.url).toBe('/routes');
        expect(req.headers.authorization).toBe('Bearer t0ken');
        if (hold) {
          held.push(res);
          return;
        }
        res.end(JSON.stringify(answer));
      });
      await new Promise<void>((r) => admin.listen(0, '127.0.0.1', r));
      const url = `http://127.0.0.1:${(admin.address() as AddressInfo).port}`;
      const routes = open({ url, token: 't0ken', pollIntervalMs: 20 });
      try {
        await once(admin, 'request');
        // Not read yet: an environment's work has no route to guess.
        expect(() => routes.get('feature-1')).toThrow(
          expect.objectContaining({ code: 'ERR_PICOP_INVALID_STATE' }),
        );
        expect(routes.get(undefined)).toBeUndefined();
        hold = false;
        for (const res of held.splice(0)) res.end(JSON.stringify(answer));
        await once(routes, 'change');
        expect(routes.get('feature-1')?.host).toBe('10.0.0.1');
        answer = { routes: { 'feature-1': '10.0.0.2:80' } };
        await once(routes, 'change');
        expect(routes.get('feature-1')?.host).toBe('10.0.0.2');
        // The admin API goes away: the last routes stay, the failures are counted.
        admin.close();
        admin.closeAllConnections();
        await once(routes, 'error');
        expect(routes.failures).toBeGreaterThan(0);
        expect(routes.get('feature-1')?.host).toBe('10.0.0.2');
      } finally {
        admin.close();
      }
    });
  });
});
