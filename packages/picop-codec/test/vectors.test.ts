import { type CodecOptions, decodeHeader, encodeHeader, PicopFields } from '@picop/codec';
import { describe, expect, it } from 'vitest';
import { decodeChunks, hex, SIG_HEX, splits } from './helpers.js';

interface Vector {
  name: string;
  options?: CodecOptions;
  fields: Array<[string, string]>;
  wire: Buffer;
}

const VECTORS: Vector[] = [
  {
    name: 'spec, Env-Id: feature-1',
    fields: [['Env-Id', 'feature-1']],
    wire: hex(`${SIG_HEX} 01 0010 ${Buffer.from('Env-Id:feature-1').toString('hex')}`),
  },
  {
    name: 'spec, no fields',
    fields: [],
    wire: hex(`${SIG_HEX} 01 0000`),
  },
  {
    name: 'spec, three fields, colon and spaces in a value',
    fields: [
      ['Env-Id', 'pr-1234'],
      ['x-tenant', 'a b\tc'],
      ['Url', 'http://x:1/'],
    ],
    wire: Buffer.concat([
      hex(`${SIG_HEX} 01 002f`),
      Buffer.from('Env-Id:pr-1234\r\nx-tenant:a b\tc\r\nUrl:http://x:1/'),
    ]),
  },
  {
    name: 'spec, empty value',
    fields: [['Env-Id', '']],
    wire: hex(`${SIG_HEX} 01 0007 ${Buffer.from('Env-Id:').toString('hex')}`),
  },
  {
    // What picop-go's header.Format writes: signature, 0x01, one length byte, the context.
    name: 'picop-go, Env-Id: feature-1 (Go reference bytes)',
    options: { dialect: 'picop-go' },
    fields: [['Env-Id', 'feature-1']],
    wire: hex(`${SIG_HEX} 01 10 ${Buffer.from('Env-Id:feature-1').toString('hex')}`),
  },
  {
    // What a Go service with no Env-Id sends: the reference proxy routes it to its default.
    name: 'picop-go, no fields (the Go reference, no context)',
    options: { dialect: 'picop-go' },
    fields: [],
    wire: hex(`${SIG_HEX} 01 00`),
  },
  {
    name: 'picop-go, two fields',
    options: { dialect: 'picop-go' },
    fields: [
      ['Env-Id', 'main'],
      ['Tenant', 'a'],
    ],
    wire: hex(`${SIG_HEX} 01 15 ${Buffer.from('Env-Id:main\r\nTenant:a').toString('hex')}`),
  },
];

describe('wire vectors', () => {
  it('picop-go writes names as the Go reference does: canonical, sorted by name', () => {
    const wire = encodeHeader(
      [
        ['x-tenant', 'a'],
        ['ENV-ID', 'feature-1'],
        ['a-b', 'c'],
      ],
      { dialect: 'picop-go' },
    );
    expect(wire.subarray(14).toString()).toBe('A-B:c\r\nEnv-Id:feature-1\r\nX-Tenant:a');
    expect(wire[13]).toBe(wire.length - 14);
  });

  for (const v of VECTORS) {
    describe(v.name, () => {
      it('encodes to the exact bytes', () => {
        expect(encodeHeader(v.fields, v.options).toString('hex')).toBe(v.wire.toString('hex'));
        expect(encodeHeader(new PicopFields(v.fields), v.options).equals(v.wire)).toBe(true);
        expect(encodeHeader(Object.fromEntries(v.fields), v.options).equals(v.wire)).toBe(true);
      });

      it('decodes whole with decodeHeader, with and without data after it', () => {
        const plain = decodeHeader(v.wire, v.options);
        expect([...plain.fields]).toEqual(v.fields);
        expect(plain.byteLength).toBe(v.wire.length);
        const withData = decodeHeader(Buffer.concat([v.wire, Buffer.from('*1\r\n')]), v.options);
        expect(withData.byteLength).toBe(v.wire.length);
      });

      it('decodes incrementally whole, byte by byte, and split at every boundary', () => {
        const data = Buffer.from('PING\r\nmore');
        for (const { how, chunks } of splits(Buffer.concat([v.wire, data]))) {
          const { result, after } = decodeChunks(chunks, v.options);
          expect([...result.fields], how).toEqual(v.fields);
          expect(after.toString(), how).toBe('PING\r\nmore');
        }
      });
    });
  }

  it('decodes a Uint8Array that is not a Buffer', () => {
    const wire = VECTORS[0]!.wire;
    const view = new Uint8Array(wire.length + 4).subarray(2, 2 + wire.length);
    view.set(wire);
    expect(decodeHeader(view).fields.get('env-id')).toBe('feature-1');
  });

  it('keeps the sender casing of names and finds them case-insensitively', () => {
    const { fields } = decodeHeader(encodeHeader({ 'ENV-ID': 'x' }));
    expect([...fields.keys()]).toEqual(['ENV-ID']);
    expect(fields.get('env-id')).toBe('x');
    expect(fields.get('Env-Id')).toBe('x');
  });

  it('encodes the largest context the spec allows', () => {
    const value = 'v'.repeat(65535 - 'Env-Id:'.length);
    const wire = encodeHeader({ 'Env-Id': value }, { maxLength: 65535 });
    expect(wire.readUInt16BE(13)).toBe(65535);
    expect(decodeHeader(wire, { maxLength: 65535 }).fields.get('Env-Id')).toBe(value);
  });
});
