import { OriginRoutes } from '@picop/routes';
import { describe, expect, it } from 'vitest';

const speaks = (origins: string[], url: string) => new OriginRoutes({}, origins).speaksPicop(url);

describe('OriginRoutes', () => {
  describe('.speaksPicop()', () => {
    it.each([
      ['*.svc.cluster.local', 'http://orders.shop.svc.cluster.local:8080', true],
      ['*.svc.cluster.local', 'https://ORDERS.shop.svc.cluster.local', true],
      ['*.svc.cluster.local', 'http://svc.cluster.local:80', false],
      ['*.svc.cluster.local', 'https://api.stripe.com', false],
      ['*.svc.cluster.local', 'https://svc.cluster.local.evil.example', false],
      ['orders:8080', 'http://orders:8080/items', true],
      ['orders:8080', 'http://orders:8081', false],
      ['orders:8080', 'http://orders.evil:8080', false],
      ['orders', 'http://orders', true],
      ['orders:*', 'https://orders:8443', true],
      ['https://payments:443', 'https://payments', true],
      ['https://payments:443', 'http://payments:443', false],
      ['127.0.0.1', 'http://127.0.0.1:3000', true],
      ['127.0.0.1', 'http://127.0.0.10:3000', false],
      ['[::1]:8080', 'http://[::1]:8080', true],
      ['*', 'https://anything.example:1234', true],
    ])('%s against %s: %s', (pattern, url, expected) => {
      expect(speaks([pattern], url)).toBe(expected);
    });

    it('takes several patterns, and a routed origin speaks PiCoP without a pattern', () => {
      const routes = new OriginRoutes(
        { 'http://routed:80': { table: { 'feature-1': 'routed-f1:80' } } },
        ['a', 'b:81'],
      );
      expect(
        ['http://a', 'http://b:81', 'http://routed', 'http://c'].map((u) => routes.speaksPicop(u)),
      ).toEqual([true, true, true, false]);
      routes.close();
    });

    it('speaks PiCoP nowhere without patterns or routes', () => {
      expect(speaks([], 'http://orders:8080')).toBe(false);
    });
  });

  describe('new OriginRoutes()', () => {
    it.each(['http://orders/items', 'orders:99999', 'ftp://orders', 'orders:80:80', 'or ders', ''])(
      'refuses the pattern %j with ERR_PICOP_INVALID_ARG',
      (pattern) => {
        expect(() => new OriginRoutes({}, [pattern])).toThrow(
          expect.objectContaining({ code: 'ERR_PICOP_INVALID_ARG' }),
        );
      },
    );
  });
});
