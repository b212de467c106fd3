import {
  type CodecOptions,
  decodeHeader,
  encodeHeader,
  HeaderDecoder,
  isPicopError,
  matchSignature,
  PicopError,
} from '@picop/codec';
import { describe, expect, it } from 'vitest';
import { decodeChunks, hex, SIG_HEX, splits, thrown } from './helpers.js';

const ctx = (s: string) => Buffer.from(s, 'latin1').toString('hex');
const spec = (context: string) =>
  hex(
    `${SIG_HEX} 01 ${Buffer.from(context, 'latin1').length.toString(16).padStart(4, '0')} ${ctx(context)}`,
  );

interface BadInput {
  name: string;
  wire: Buffer;
  code: string;
  offset: number;
  options?: CodecOptions;
}

const BAD: BadInput[] = [
  {
    name: 'HTTP request',
    wire: Buffer.from('GET / HTTP/1.1\r\n\r\n'),
    code: 'ERR_PICOP_SIGNATURE',
    offset: 0,
  },
  {
    name: 'signature wrong at byte 7',
    wire: hex('0d0a0d0a000d0a52'),
    code: 'ERR_PICOP_SIGNATURE',
    offset: 7,
  },
  {
    name: 'PROXY protocol v2',
    wire: hex(`${SIG_HEX} 21 11 000c 7f000001 7f000001 1f90 0050`),
    code: 'ERR_PICOP_VERSION',
    offset: 12,
  },
  { name: 'version 2', wire: hex(`${SIG_HEX} 02 0000`), code: 'ERR_PICOP_VERSION', offset: 12 },
  {
    name: 'upper nibble set',
    wire: hex(`${SIG_HEX} 11 0000`),
    code: 'ERR_PICOP_VERSION',
    offset: 12,
  },
  {
    name: 'length over maxLength',
    wire: hex(`${SIG_HEX} 01 1001`),
    code: 'ERR_PICOP_TOO_LARGE',
    offset: 13,
  },
  { name: 'no colon', wire: spec('Env-Id'), code: 'ERR_PICOP_SYNTAX', offset: 21 },
  { name: 'empty name', wire: spec(':x'), code: 'ERR_PICOP_SYNTAX', offset: 15 },
  { name: 'space before colon', wire: spec('Env-Id :x'), code: 'ERR_PICOP_SYNTAX', offset: 21 },
  { name: 'LF alone between fields', wire: spec('a:1\nb:2'), code: 'ERR_PICOP_SYNTAX', offset: 18 },
  { name: 'CR alone between fields', wire: spec('a:1\rb:2'), code: 'ERR_PICOP_SYNTAX', offset: 18 },
  { name: 'trailing CRLF', wire: spec('a:1\r\n'), code: 'ERR_PICOP_SYNTAX', offset: 20 },
  { name: 'NUL in value', wire: spec('a:x\0y'), code: 'ERR_PICOP_SYNTAX', offset: 18 },
  { name: 'non-ASCII in value', wire: spec('a:caf\xe9'), code: 'ERR_PICOP_SYNTAX', offset: 20 },
  { name: 'DEL in name', wire: spec('a\x7f:1'), code: 'ERR_PICOP_SYNTAX', offset: 16 },
  {
    name: 'duplicate field, other casing',
    wire: spec('Env-Id:a\r\nenv-id:b'),
    code: 'ERR_PICOP_DUPLICATE_FIELD',
    offset: 25,
  },
  {
    name: 'picop-go: colon in value',
    wire: hex(`${SIG_HEX} 01 05 ${ctx('a:b:c')}`),
    options: { dialect: 'picop-go' },
    code: 'ERR_PICOP_SYNTAX',
    offset: 17,
  },
  {
    name: 'spec reading a picop-go header with maxLength 255',
    wire: hex(`${SIG_HEX} 01 10 ${ctx('Env-Id:feature-1')}`),
    options: { maxLength: 255 },
    code: 'ERR_PICOP_TOO_LARGE',
    offset: 13,
  },
];

describe('decoding bad input', () => {
  for (const bad of BAD) {
    it(`${bad.name}: ${bad.code} at offset ${bad.offset}, however it is split`, () => {
      const whole = thrown(() => decodeHeader(bad.wire, bad.options));
      expect(whole).toBeInstanceOf(PicopError);
      expect(whole.code).toBe(bad.code);
      expect(whole.offset).toBe(bad.offset);
      expect(whole.message).toMatch(new RegExp(`offset ${bad.offset}|byte ${bad.offset}`));
      for (const { how, chunks } of splits(bad.wire)) {
        const err = thrown(() => decodeChunks(chunks, bad.options));
        expect(err.code, how).toBe(bad.code);
        expect(err.offset, how).toBe(bad.offset);
      }
    });
  }

  it('fails on an oversized length at once, without waiting for the context', () => {
    const decoder = new HeaderDecoder();
    expect(decoder.push(hex(`${SIG_HEX} 01`))).toBeUndefined();
    const err = thrown(() => decoder.push(hex('ffff')));
    expect(err.code).toBe('ERR_PICOP_TOO_LARGE');
    expect(err.message).toContain('raise `maxLength`');
  });

  it('accepts a length up to maxLength and rejects one past it', () => {
    const wire = spec(`a:${'x'.repeat(98)}`);
    expect(decodeHeader(wire, { maxLength: 100 }).fields.get('a')).toHaveLength(98);
    expect(thrown(() => decodeHeader(wire, { maxLength: 99 })).code).toBe('ERR_PICOP_TOO_LARGE');
  });

  it('names the Go dialect when a spec reader meets a picop-go header', () => {
    const err = thrown(() => decodeHeader(hex(`${SIG_HEX} 01 10 ${ctx('Env-Id:feature-1')}`)));
    expect(err.code).toBe('ERR_PICOP_TOO_LARGE');
    expect(err.message).toContain("dialect: 'picop-go'");
  });

  it('reports a truncated buffer to decodeHeader with ERR_PICOP_TRUNCATED', () => {
    const wire = spec('Env-Id:feature-1');
    for (let n = 0; n < wire.length; n++) {
      const err = thrown(() => decodeHeader(wire.subarray(0, n)));
      expect(err.code, `length ${n}`).toBe('ERR_PICOP_TRUNCATED');
      expect(err.offset).toBe(n);
    }
  });

  it('reports a stream that ends inside the header from HeaderDecoder.end()', () => {
    const decoder = new HeaderDecoder();
    expect(decoder.push(spec('Env-Id:feature-1').subarray(0, 20))).toBeUndefined();
    expect(decoder.bytesRead).toBe(20);
    const err = thrown(() => decoder.end());
    expect(err.code).toBe('ERR_PICOP_TRUNCATED');
    expect(err.message).toContain('got 20 bytes, the header needs 31');
    expect(thrown(() => new HeaderDecoder().end()).code).toBe('ERR_PICOP_TRUNCATED');
  });

  it('is finished after a result or an error', () => {
    const ok = new HeaderDecoder();
    expect(ok.push(spec('a:1'))).toBeDefined();
    expect(ok.finished).toBe(true);
    expect(thrown(() => ok.push(Buffer.from('x'))).code).toBe('ERR_PICOP_INVALID_STATE');
    expect(() => ok.end()).not.toThrow();

    const bad = new HeaderDecoder();
    const first = thrown(() => bad.push(Buffer.from('GET')));
    expect(thrown(() => bad.push(Buffer.from('x')))).toBe(first);
  });

  it('rejects input that is not bytes', () => {
    expect(thrown(() => decodeHeader('abc' as unknown as Buffer)).code).toBe(
      'ERR_PICOP_INVALID_ARG',
    );
    expect(thrown(() => new HeaderDecoder().push({} as Buffer)).code).toBe('ERR_PICOP_INVALID_ARG');
  });
});

describe('encoding bad input', () => {
  const cases: Array<[string, unknown, string, CodecOptions?]> = [
    ['CR in value', { 'Env-Id': 'a\rb' }, 'ERR_PICOP_SYNTAX'],
    ['LF in value', { 'Env-Id': 'a\nX-Evil:1' }, 'ERR_PICOP_SYNTAX'],
    ['CRLF injection', { 'Env-Id': 'a\r\nX-Evil:1' }, 'ERR_PICOP_SYNTAX'],
    ['NUL in value', { 'Env-Id': 'a\0' }, 'ERR_PICOP_SYNTAX'],
    ['non-ASCII value', { 'Env-Id': 'café' }, 'ERR_PICOP_SYNTAX'],
    ['astral value', { 'Env-Id': '🙂' }, 'ERR_PICOP_SYNTAX'],
    ['empty name', { '': 'x' }, 'ERR_PICOP_SYNTAX'],
    ['space in name', { 'Env Id': 'x' }, 'ERR_PICOP_SYNTAX'],
    ['colon in name', { 'Env:Id': 'x' }, 'ERR_PICOP_SYNTAX'],
    [
      'duplicate name',
      [
        ['Env-Id', 'a'],
        ['env-id', 'b'],
      ],
      'ERR_PICOP_DUPLICATE_FIELD',
    ],
    ['number value', { 'Env-Id': 1 }, 'ERR_PICOP_INVALID_ARG'],
    ['bad entry', [['Env-Id']], 'ERR_PICOP_INVALID_ARG'],
    ['too large', { a: 'x'.repeat(4095) }, 'ERR_PICOP_TOO_LARGE'],
    ['picop-go too large', { a: 'x'.repeat(254) }, 'ERR_PICOP_TOO_LARGE', { dialect: 'picop-go' }],
    ['picop-go colon', { a: 'b:c' }, 'ERR_PICOP_SYNTAX', { dialect: 'picop-go' }],
    ['unknown dialect', {}, 'ERR_PICOP_INVALID_ARG', { dialect: 'go' as 'spec' }],
    ['maxLength too big', {}, 'ERR_PICOP_INVALID_ARG', { maxLength: 70000 }],
    [
      'maxLength too big for picop-go',
      { a: '1' },
      'ERR_PICOP_INVALID_ARG',
      { dialect: 'picop-go', maxLength: 256 },
    ],
    ['maxLength not an integer', {}, 'ERR_PICOP_INVALID_ARG', { maxLength: 1.5 }],
  ];
  for (const [name, fields, code, options] of cases) {
    it(`${name}: ${code}`, () => {
      const err = thrown(() => encodeHeader(fields as Record<string, string>, options));
      expect(err).toBeInstanceOf(PicopError);
      expect(err.code).toBe(code);
      expect(isPicopError(err)).toBe(true);
    });
  }

  it('says which field and character was wrong', () => {
    expect(thrown(() => encodeHeader({ 'Env-Id': 'a\r\nX-Evil:1' })).message).toBe(
      'Invalid character 0x0d at index 1 of the value of PiCoP field "Env-Id"',
    );
  });
});

describe('matchSignature()', () => {
  const sig = hex(SIG_HEX);
  it('decides at the first byte that differs', () => {
    expect(matchSignature(Buffer.from('G'))).toBe('mismatch');
    expect(matchSignature(hex('0d0a0d0a01'))).toBe('mismatch');
    expect(matchSignature(Buffer.alloc(0))).toBe('partial');
    expect(matchSignature(sig.subarray(0, 11))).toBe('partial');
    expect(matchSignature(sig)).toBe('match');
    expect(matchSignature(Buffer.concat([sig, hex('01 0000')]))).toBe('match');
  });
});
