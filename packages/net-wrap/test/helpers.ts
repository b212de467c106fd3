import net from 'node:net';
import { SIGNATURE_HEX } from '../../../test/support/header.js';

export { selfSignedCert, useContextManager } from '../../../test/support/otel-and-tls.js';

import { listen } from '../../../test/support/servers.js';

export { listen };

/** A raw TCP server; `next()` resolves with the first `n` bytes of the next connection. */
export async function recordingServer(n: number): Promise<{
  port: number;
  next: () => Promise<Buffer>;
  server: net.Server;
}> {
  const waiting: Array<(bytes: Buffer) => void> = [];
  const done: Buffer[] = [];
  const server = net.createServer((socket) => {
    const chunks: Buffer[] = [];
    let length = 0;
    socket.on('error', () => {});
    socket.on('data', (chunk) => {
      chunks.push(chunk);
      length += chunk.length;
      if (length >= n && length - chunk.length < n) {
        const bytes = Buffer.concat(chunks).subarray(0, n);
        const resolve = waiting.shift();
        if (resolve) resolve(bytes);
        else done.push(bytes);
        socket.end();
      }
    });
  });
  const next = () =>
    new Promise<Buffer>((resolve) => {
      const bytes = done.shift();
      if (bytes) resolve(bytes);
      else waiting.push(resolve);
    });
  return { port: await listen(server), next, server };
}

export const once = <T = unknown>(emitter: NodeJS.EventEmitter, event: string): Promise<T> =>
  new Promise((resolve) => emitter.once(event, (value: T) => resolve(value)));

export const HEADER_FEATURE_1 = Buffer.concat([
  Buffer.from(`${SIGNATURE_HEX}010010`, 'hex'),
  Buffer.from('Env-Id:feature-1'),
]);
export const EMPTY_HEADER = Buffer.from(`${SIGNATURE_HEX}010000`, 'hex');
