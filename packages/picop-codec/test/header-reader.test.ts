import {
  encodeHeader,
  HeaderReader,
  type HeaderReaderOptions,
  type HeaderReadResult,
  PicopFields,
} from '@picop/codec';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hex, SIG_HEX } from './helpers.js';

/** The spec's header of `Env-Id: feature-1`. */
const HEADER_FEATURE_1 = Buffer.concat([hex(`${SIG_HEX}010010`), Buffer.from('Env-Id:feature-1')]);

const APP = Buffer.from('PING\r\n');

/**
 * Feeds `stream` cut at `cuts` through one reused buffer, overwritten after every push, as a
 * server reading with `onread` does; returns the decision with `rest` copied at once, and every
 * byte after it.
 */
function feed(stream: Buffer, cuts: number[], options: HeaderReaderOptions) {
  const reader = new HeaderReader(options);
  const shared = Buffer.alloc(stream.length);
  let result: HeaderReadResult | undefined;
  let after = Buffer.alloc(0);
  let from = 0;
  for (const to of [
    ...cuts.filter((c) => c > 0 && c < stream.length).sort((a, b) => a - b),
    stream.length,
  ]) {
    if (to <= from) continue;
    const n = stream.copy(shared, 0, from, to);
    const chunk = shared.subarray(0, n);
    if (result === undefined) {
      const done = reader.push(chunk);
      if (done !== undefined) result = { fields: done.fields, rest: Buffer.from(done.rest) };
    } else {
      after = Buffer.concat([after, chunk]);
    }
    shared.fill(0xee);
    from = to;
  }
  return { result, after: Buffer.concat([result?.rest ?? Buffer.alloc(0), after]) };
}

describe('HeaderReader', () => {
  it('reads a header and the bytes after it, however the stream is cut and its buffer reused', () => {
    const stream = Buffer.concat([HEADER_FEATURE_1, APP]);
    fc.assert(
      fc.property(fc.array(fc.nat(stream.length), { maxLength: 8 }), (cuts) => {
        const { result, after } = feed(stream, cuts, {});
        expect(result?.fields?.toJSON()).toEqual({ 'Env-Id': 'feature-1' });
        expect(after).toEqual(APP);
      }),
    );
  });

  it('in optional mode hands every byte of a plain stream on, however it is cut', () => {
    // Starts like the signature (\r\n\r\n) and then differs, so bytes are held first.
    const plain = Buffer.from('\r\n\r\nPING\r\n');
    fc.assert(
      fc.property(fc.array(fc.nat(plain.length), { maxLength: 8 }), (cuts) => {
        const { result, after } = feed(plain, cuts, { mode: 'optional' });
        expect(result?.fields).toBeUndefined();
        expect(after).toEqual(plain);
      }),
    );
  });

  it('in optional mode still reads a header', () => {
    const stream = Buffer.concat([encodeHeader(new PicopFields({ 'Env-Id': 'a' })), APP]);
    const { result, after } = feed(stream, [1, 5, 13], { mode: 'optional' });
    expect(result?.fields?.get('env-id')).toBe('a');
    expect(after).toEqual(APP);
  });

  it('refuses a plain stream in required mode at its first byte', () => {
    const reader = new HeaderReader();
    expect(() => reader.push(Buffer.from('P'))).toThrow(
      expect.objectContaining({ code: 'ERR_PICOP_SIGNATURE' }),
    );
  });

  it('at the end: plain in optional mode with no byte, truncated otherwise', () => {
    expect(new HeaderReader({ mode: 'optional' }).end()).toEqual({
      fields: undefined,
      rest: Buffer.alloc(0),
    });
    const partial = new HeaderReader({ mode: 'optional' });
    expect(partial.push(HEADER_FEATURE_1.subarray(0, 3))).toBeUndefined();
    expect(() => partial.end()).toThrow(expect.objectContaining({ code: 'ERR_PICOP_TRUNCATED' }));
    expect(() => new HeaderReader().end()).toThrow(
      expect.objectContaining({ code: 'ERR_PICOP_TRUNCATED' }),
    );
    const decided = new HeaderReader();
    decided.push(HEADER_FEATURE_1);
    expect(() => decided.end()).toThrow(
      expect.objectContaining({ code: 'ERR_PICOP_INVALID_STATE' }),
    );
  });

  it('counts the bytes taken for its timeout error', () => {
    const reader = new HeaderReader({ mode: 'optional' });
    reader.push(HEADER_FEATURE_1.subarray(0, 5));
    const err = reader.timeoutError(100, '127.0.0.1:1');
    expect(err.code).toBe('ERR_PICOP_TIMEOUT');
    expect(err.message).toMatch(/within 100 ms \(got 5 of .* from 127\.0\.0\.1:1/);
  });
});
