import net from 'node:net';
import type { PicopFields } from '@picop/codec';
import { readHeader } from '@picop/net-wrap';
import { afterAll, describe, expect, it } from 'vitest';
import { SIGNATURE_HEX } from '../../../test/support/header.js';
import { EMPTY_HEADER, HEADER_FEATURE_1, listen } from './helpers.js';

type Outcome = { fields?: Record<string, string> | null; error?: string; after: string };

/**
 * A server that reads the header with `options`, then collects everything that follows; the client
 * sends `chunks` with a pause between them so they arrive as separate segments.
 */
async function exchange(
  chunks: Buffer[],
  options: Parameters<typeof readHeader>[1] = {},
  { end = true }: { end?: boolean } = {},
): Promise<Outcome & { destroyed: boolean }> {
  let resolveOutcome!: (o: Outcome & { destroyed: boolean }) => void;
  const outcome = new Promise<Outcome & { destroyed: boolean }>((r) => (resolveOutcome = r));
  const server = net.createServer(async (socket) => {
    let fields: PicopFields | undefined;
    try {
      fields = await readHeader(socket, options);
    } catch (err) {
      resolveOutcome({
        error: (err as { code: string }).code,
        after: '',
        destroyed: socket.destroyed,
      });
      return;
    }
    let after = '';
    socket.on('data', (d) => (after += d.toString('latin1')));
    socket.on('end', () => {
      resolveOutcome({ fields: fields ? fields.toJSON() : null, after, destroyed: false });
      socket.end();
    });
  });
  const port = await listen(server);
  const client = net.connect({ host: '127.0.0.1', port, noDelay: true });
  client.on('error', () => {});
  for (const chunk of chunks) {
    client.write(chunk);
    // pacing: each chunk in its own read, not synchronisation
    await new Promise((r) => setTimeout(r, 2));
  }
  if (end) client.end();
  const result = await outcome;
  client.destroy();
  server.close();
  return result;
}

const APP = Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n');

describe('readHeader()', () => {
  it('reads a header that arrives in one chunk with application data, and hands the data on', async () => {
    const result = await exchange([Buffer.concat([HEADER_FEATURE_1, APP])]);
    expect(result).toEqual({
      fields: { 'Env-Id': 'feature-1' },
      after: APP.toString(),
      destroyed: false,
    });
  });

  it('reads a header that arrives one byte at a time', async () => {
    const bytes = Buffer.concat([HEADER_FEATURE_1, Buffer.from('PING')]);
    const result = await exchange([...bytes].map((b) => Buffer.of(b)));
    expect(result.fields).toEqual({ 'Env-Id': 'feature-1' });
    expect(result.after).toBe('PING');
  });

  it('gives the same result for a split at every boundary', async () => {
    const bytes = Buffer.concat([HEADER_FEATURE_1, Buffer.from('PING')]);
    const results = await Promise.all(
      Array.from({ length: bytes.length - 1 }, (_, i) =>
        exchange([bytes.subarray(0, i + 1), bytes.subarray(i + 1)]),
      ),
    );
    for (const r of results)
      expect(r).toEqual({ fields: { 'Env-Id': 'feature-1' }, after: 'PING', destroyed: false });
  });

  it('reads an empty header as no fields', async () => {
    expect((await exchange([EMPTY_HEADER, Buffer.from('x')])).fields).toEqual({});
  });

  it('optional mode hands a plain HTTP request on untouched', async () => {
    const result = await exchange([APP.subarray(0, 1), APP.subarray(1)], { mode: 'optional' });
    expect(result).toEqual({ fields: null, after: APP.toString(), destroyed: false });
  });

  it('optional mode decides at the first differing byte, even inside the signature', async () => {
    const almost = Buffer.concat([HEADER_FEATURE_1.subarray(0, 5), Buffer.from('X rest')]);
    const result = await exchange([almost.subarray(0, 3), almost.subarray(3)], {
      mode: 'optional',
    });
    expect(result.fields).toBeNull();
    expect(Buffer.from(result.after, 'latin1').equals(almost)).toBe(true);
  });

  it('optional mode still reads a PiCoP header', async () => {
    expect((await exchange([HEADER_FEATURE_1], { mode: 'optional' })).fields).toEqual({
      'Env-Id': 'feature-1',
    });
  });

  it('required mode refuses a plain stream with ERR_PICOP_SIGNATURE and destroys the socket', async () => {
    expect(await exchange([APP])).toEqual({
      error: 'ERR_PICOP_SIGNATURE',
      after: '',
      destroyed: true,
    });
  });

  it('refuses an oversized length as soon as it arrives', async () => {
    const big = Buffer.from(`${SIGNATURE_HEX}01ffff`, 'hex');
    expect((await exchange([big], {}, { end: false })).error).toBe('ERR_PICOP_TOO_LARGE');
    expect((await exchange([HEADER_FEATURE_1], { maxLength: 8 })).error).toBe(
      'ERR_PICOP_TOO_LARGE',
    );
  });

  it('reports a header cut short by the peer closing as ERR_PICOP_TRUNCATED', async () => {
    expect((await exchange([HEADER_FEATURE_1.subarray(0, 20)])).error).toBe('ERR_PICOP_TRUNCATED');
  });

  describe('a peer that stalls mid-header', () => {
    const servers: net.Server[] = [];
    afterAll(() => {
      for (const s of servers) s.close();
    });

    it('is closed with ERR_PICOP_TIMEOUT, while other connections are served', async () => {
      const outcomes: Array<string | undefined> = [];
      const server = net.createServer(async (socket) => {
        socket.on('error', () => {});
        try {
          outcomes.push((await readHeader(socket, { timeoutMs: 300 }))?.get('env-id'));
          socket.end('ok');
        } catch (err) {
          outcomes.push((err as { code: string }).code);
        }
      });
      servers.push(server);
      const port = await listen(server);
      const staller = net.connect({ host: '127.0.0.1', port });
      staller.write(HEADER_FEATURE_1.subarray(0, 10));
      const closed = new Promise((r) => staller.on('close', r));
      // A well-behaved client during the stall is answered at once.
      const good = net.connect({ host: '127.0.0.1', port });
      good.write(HEADER_FEATURE_1);
      const reply = await new Promise<string>((r) => good.on('data', (d) => r(d.toString())));
      expect(reply).toBe('ok');
      expect(outcomes).toEqual(['feature-1']);
      await closed;
      expect(outcomes).toEqual(['feature-1', 'ERR_PICOP_TIMEOUT']);
    });
  });
});
