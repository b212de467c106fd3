import {
  type CodecOptions,
  type Dialect,
  decodeHeader,
  encodeHeader,
  HeaderDecoder,
  isPicopError,
} from '@picop/codec';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hex, SIG_HEX } from './helpers.js';

const TCHARS =
  "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".split('');
const VCHARS = Array.from({ length: 0x7e - 0x20 + 1 }, (_, i) =>
  String.fromCharCode(0x20 + i),
).concat('\t');

const name = fc.string({ unit: fc.constantFrom(...TCHARS), minLength: 1, maxLength: 12 });
const value = (dialect: Dialect) =>
  fc.string({
    unit: fc.constantFrom(...(dialect === 'spec' ? VCHARS : VCHARS.filter((c) => c !== ':'))),
    maxLength: 40,
  });
const fieldsOf = (dialect: Dialect) =>
  fc.uniqueArray(fc.tuple(name, value(dialect)), {
    minLength: dialect === 'spec' ? 0 : 1,
    maxLength: 5,
    selector: ([n]) => n.toLowerCase(),
  });

/** Splits `bytes` at the given cut points. */
function cut(bytes: Buffer, points: number[]): Buffer[] {
  const at = [...new Set(points.map((p) => p % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const p of at) {
    chunks.push(bytes.subarray(from, p));
    from = p;
  }
  chunks.push(bytes.subarray(from));
  return chunks;
}

/** Decoding either returns a result or throws a PicopError: anything else fails the property. */
function decodeOrPicopError(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    if (!isPicopError(err)) throw err;
  }
}

describe('properties', () => {
  for (const dialect of ['spec', 'picop-go'] as const) {
    const options: CodecOptions = { dialect };
    it(`${dialect}: decode(encode(fields)) equals fields, whole and in any chunks`, () => {
      fc.assert(
        fc.property(fieldsOf(dialect), fc.array(fc.nat(), { maxLength: 6 }), (fields, points) => {
          const wire = encodeHeader(fields, options);
          // picop-go writes canonical names sorted by name, as the Go reference does.
          const decoded = [...decodeHeader(wire, options).fields];
          if (dialect === 'picop-go') {
            const names = decoded.map(([name]) => name);
            expect(names).toEqual([...names].sort());
            expect(decoded.map(([n, v]) => `${n.toLowerCase()}:${v}`).sort()).toEqual(
              fields.map(([n, v]) => `${n.toLowerCase()}:${v}`).sort(),
            );
            return;
          }
          expect(decoded).toEqual(fields);
          const decoder = new HeaderDecoder(options);
          let result: ReturnType<HeaderDecoder['push']>;
          for (const chunk of cut(wire, points)) result ??= decoder.push(chunk);
          expect([...(result?.fields ?? [])]).toEqual(fields);
          expect(result?.rest.length).toBe(0);
        }),
        { numRuns: 500 },
      );
    });
  }

  const anyBytes = fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b));
  // Arbitrary bytes after a valid prefix, so the context parser gets most of the load.
  const afterPrefix = fc
    .uint8Array({ maxLength: 40 })
    .map((b) => Buffer.concat([hex(`${SIG_HEX} 01`), Buffer.of(0, b.length), b]));

  for (const [label, bytes] of [
    ['arbitrary bytes', anyBytes],
    ['arbitrary context bytes', afterPrefix],
  ] as const) {
    it(`${label} give a result or a PicopError, whole and in any chunks`, () => {
      fc.assert(
        fc.property(
          bytes,
          fc.array(fc.nat(), { maxLength: 6 }),
          fc.constantFrom<Dialect>('spec', 'picop-go'),
          (input, points, dialect) => {
            decodeOrPicopError(() => decodeHeader(input, { dialect }));
            decodeOrPicopError(() => {
              const decoder = new HeaderDecoder({ dialect });
              for (const chunk of cut(input, points)) if (decoder.push(chunk)) return;
              decoder.end();
            });
          },
        ),
        { numRuns: 2000 },
      );
    });
  }

  it('whole and chunked decoding agree on every input', () => {
    fc.assert(
      fc.property(afterPrefix, fc.array(fc.nat(), { maxLength: 6 }), (input, points) => {
        const outcome = (fn: () => unknown) => {
          try {
            return { ok: fn() };
          } catch (err) {
            return {
              code: (err as { code: string }).code,
              offset: (err as { offset: number }).offset,
            };
          }
        };
        const whole = outcome(() => [...decodeHeader(input).fields]);
        const chunked = outcome(() => {
          const decoder = new HeaderDecoder();
          for (const chunk of cut(input, points)) {
            const r = decoder.push(chunk);
            if (r) return [...r.fields];
          }
          return decoder.end();
        });
        if ('code' in whole && whole.code === 'ERR_PICOP_TRUNCATED') {
          expect(chunked).toMatchObject({ code: 'ERR_PICOP_TRUNCATED' });
        } else {
          expect(chunked).toEqual(whole);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
