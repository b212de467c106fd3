// One reading of the header field: a value with whitespace around it is no Env-Id, for picop-proxy
// (the default route) and for the service behind it (no Env-Id), in both dialects.
import http from 'node:http';
import net from 'node:net';
import type { Dialect } from '@picop/codec';
import { acceptPicop } from '@picop/net-wrap';
import { getEnvId } from '@picop/propagator';
import { createProxy } from '@picop/proxy';
import { describe, expect, it } from 'vitest';
import { SIGNATURE_HEX } from '../support/header.js';
import { useContextManager } from '../support/otel-and-tls.js';
import { listen } from './helpers.js';

useContextManager();

const SIGNATURE = Buffer.from(SIGNATURE_HEX, 'hex');

/** A header with `context` as its bytes, written by hand (the encoder refuses such values). */
function rawHeader(context: string, dialect: Dialect): Buffer {
  const bytes = Buffer.from(context, 'latin1');
  const length =
    dialect === 'picop-go'
      ? Buffer.from([bytes.length])
      : Buffer.from([bytes.length >> 8, bytes.length & 0xff]);
  return Buffer.concat([SIGNATURE, Buffer.from([0x01]), length, bytes]);
}

/** Sends `header` then a GET through `port`; resolves with the answer's body. */
function getWith(port: number, header: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let answer = '';
    socket.on('data', (d) => {
      answer += d;
    });
    socket.on('end', () => resolve(answer.slice(answer.indexOf('\r\n\r\n') + 4)));
    socket.on('error', reject);
    socket.write(
      Buffer.concat([
        header,
        Buffer.from('GET / HTTP/1.1\r\nhost: b\r\nconnection: close\r\n\r\n'),
      ]),
    );
  });
}

describe.each(['spec', 'picop-go'] as const)('Env-Id with whitespace, %s dialect', (dialect) => {
  it.each(['Env-Id:  feature-1', 'Env-Id:\tfeature-1', 'Env-Id: feature-1 '])(
    '%j: the proxy routes it to the default and the service runs it in no environment',
    async (context) => {
      const b = (name: string) =>
        acceptPicop(
          http.createServer((_req, res) => res.end(`${name} in ${getEnvId() ?? 'none'}`)),
          { dialect },
        );
      const main = b('B[main]');
      const feature1 = b('B[feature-1]');
      const proxy = createProxy({
        listen: '127.0.0.1:0',
        defaultRoute: `127.0.0.1:${await listen(main)}`,
        routes: { 'feature-1': `127.0.0.1:${await listen(feature1)}` },
        propagate: true,
        dialect,
      });
      const { port } = await proxy.listen();
      try {
        expect(await getWith(port, rawHeader(context, dialect))).toBe('B[main] in none');
        // The same header without the whitespace: feature-1's, end to end.
        expect(await getWith(port, rawHeader('Env-Id:feature-1', dialect))).toBe(
          'B[feature-1] in feature-1',
        );
      } finally {
        await proxy.close(100);
        for (const s of [main, feature1]) {
          s.closeAllConnections();
          s.close();
        }
      }
    },
  );
});
