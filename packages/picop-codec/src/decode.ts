import { COLON, CR, describeByte, LF, TOKEN, VALUE } from './chars.js';
import { SIGNATURE, SIGNATURE_LENGTH, SPEC_MAX_LENGTH, VERSION_BYTE } from './constants.js';
import { type CodecOptions, type ResolvedOptions, resolveOptions } from './options.js';
import { PicopError } from './PicopError.js';
import { addValidatedField, PicopFields } from './PicopFields.js';

/** What {@link decodeHeader} returns. */
export interface DecodedHeader {
  fields: PicopFields;
  /** Length of the whole header: application data starts at this offset. */
  byteLength: number;
}

/** How far `bytes` agrees with the PiCoP signature. */
export type SignatureMatch = 'match' | 'partial' | 'mismatch';

/**
 * Compares the start of a stream with the 12-byte signature, deciding at the first byte that differs:
 * `'mismatch'` (a plain stream), `'partial'` (all bytes so far agree, fewer than 12) or `'match'`.
 *
 * @example
 * matchSignature(Buffer.from('GET / HTTP/1.1')); // 'mismatch'
 */
export function matchSignature(bytes: Uint8Array): SignatureMatch {
  const n = Math.min(bytes.length, SIGNATURE_LENGTH);
  for (let i = 0; i < n; i++) if (bytes[i] !== SIGNATURE[i]) return 'mismatch';
  return n === SIGNATURE_LENGTH ? 'match' : 'partial';
}

/**
 * Decodes a header from a buffer that holds all of it (and possibly application data after it).
 * Throws {@link PicopError}: `ERR_PICOP_TRUNCATED` when the buffer ends inside the header.
 *
 * @example
 * const { fields, byteLength } = decodeHeader(firstChunk);
 * fields.get('env-id'); // 'feature-1'
 * const appData = firstChunk.subarray(byteLength);
 */
export function decodeHeader(bytes: Uint8Array, options?: CodecOptions): DecodedHeader {
  const o = resolveOptions(options);
  const buf = asBuffer(bytes);
  if (buf.length < o.prefixLength) {
    for (let at = 0; at < buf.length; at++) checkPrefixByte(buf[at] as number, at);
    throw truncated(buf.length, o.prefixLength);
  }
  const n = readPrefix(buf, o);
  const byteLength = o.prefixLength + n;
  if (buf.length < byteLength) throw truncated(buf.length, byteLength);
  return { fields: parseContext(buf, o.prefixLength, byteLength, o), byteLength };
}

export function asBuffer(bytes: Uint8Array): Buffer {
  if (Buffer.isBuffer(bytes)) return bytes;
  if (bytes instanceof Uint8Array) return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  throw new PicopError(
    'ERR_PICOP_INVALID_ARG',
    'PiCoP header bytes must be a Buffer or Uint8Array',
  );
}

/** Checks byte `at` (0..12) of a header: the signature, then the version. */
export function checkPrefixByte(byte: number, at: number): void {
  if (at < SIGNATURE_LENGTH) {
    if (byte !== SIGNATURE[at]) {
      throw new PicopError(
        'ERR_PICOP_SIGNATURE',
        `Not a PiCoP header: byte ${at} is ${describeByte(byte)}, the signature has ${describeByte(SIGNATURE[at] as number)}`,
        { offset: at },
      );
    }
  } else if (at === SIGNATURE_LENGTH && byte !== VERSION_BYTE) {
    const what =
      byte >> 4 === 0x2
        ? 'a PROXY protocol v2 header, not PiCoP'
        : `PiCoP supports version 1 (0x01) only`;
    throw new PicopError(
      'ERR_PICOP_VERSION',
      `Unsupported version byte ${describeByte(byte)} at offset 12: ${what}`,
      { offset: SIGNATURE_LENGTH },
    );
  }
}

/** Validates signature and version of a buffer holding at least the prefix; returns the context length. */
export function readPrefix(buf: Buffer, o: ResolvedOptions): number {
  for (let at = 0; at <= SIGNATURE_LENGTH; at++) checkPrefixByte(buf[at] as number, at);
  const n = o.dialect === 'spec' ? buf.readUInt16BE(13) : (buf[13] as number);
  checkLength(n, o);
  return n;
}

function checkLength(n: number, o: ResolvedOptions): void {
  if (n > o.maxLength) {
    const limit =
      o.dialect === 'spec'
        ? `raise \`maxLength\` (at most ${SPEC_MAX_LENGTH})`
        : 'raise `maxLength` (at most 255 in picop-go)';
    const hint =
      o.dialect === 'spec' && n > 0xff
        ? "; a peer using the Go reference library needs `dialect: 'picop-go'`"
        : '';
    throw new PicopError(
      'ERR_PICOP_TOO_LARGE',
      `PiCoP context length ${n} at offset 13 is over maxLength ${o.maxLength}: ${limit}${hint}`,
      { offset: 13 },
    );
  }
}

export function truncated(got: number, need: number): PicopError {
  return new PicopError(
    'ERR_PICOP_TRUNCATED',
    `PiCoP header is truncated: got ${got} bytes, the header needs ${need} (decode streams with HeaderDecoder)`,
    { offset: got },
  );
}

function syntax(message: string, offset: number): PicopError {
  return new PicopError(
    'ERR_PICOP_SYNTAX',
    `Invalid PiCoP context: ${message} at offset ${offset}`,
    {
      offset,
    },
  );
}

/** Parses the context in `buf[start, end)`; error offsets count from the start of the header. */
export function parseContext(
  buf: Buffer,
  start: number,
  end: number,
  o: ResolvedOptions,
): PicopFields {
  const fields = new PicopFields();
  if (start === end) return fields;
  // One string for the whole context, then slices: far cheaper than a toString per name and value.
  const text = buf.toString('latin1', start, end);
  const n = text.length;
  const base = o.prefixLength;
  const noColonInValue = o.dialect === 'picop-go';
  let i = 0;
  for (;;) {
    const nameStart = i;
    let upper = false;
    let c = 0;
    while (i < n) {
      c = text.charCodeAt(i);
      if (TOKEN[c] !== 1) break;
      if (c <= 0x5a && c >= 0x41) upper = true;
      i++;
    }
    if (i === n) throw syntax("field has no ':'", i + base);
    if (c !== COLON) throw syntax(`${describeByte(c)} is not allowed in a field name`, i + base);
    if (i === nameStart) throw syntax('empty field name', i + base);
    const nameEnd = i++;
    const valueStart = i;
    while (i < n) {
      c = text.charCodeAt(i);
      if (VALUE[c] !== 1) break;
      if (c === COLON && noColonInValue) {
        throw syntax("':' in a field value (not allowed in the picop-go dialect)", i + base);
      }
      i++;
    }
    const name = text.slice(nameStart, nameEnd);
    const key = upper ? name.toLowerCase() : name;
    if (!addValidatedField(fields, key, name, text.slice(valueStart, i))) {
      throw new PicopError(
        'ERR_PICOP_DUPLICATE_FIELD',
        `Duplicate PiCoP field "${name}" at offset ${nameStart + base} (names are case-insensitive)`,
        { offset: nameStart + base },
      );
    }
    if (i === n) return fields;
    if (c !== CR) throw syntax(`${describeByte(c)} is not allowed in a field value`, i + base);
    if (i + 1 === n || text.charCodeAt(i + 1) !== LF)
      throw syntax('CR not followed by LF', i + base);
    i += 2;
    if (i === n) throw syntax('CRLF after the last field', i + base);
  }
}
