import { describeByte, TOKEN, VALUE } from './chars.js';
import { SIGNATURE, VERSION_BYTE } from './constants.js';
import { type CodecOptions, resolveOptions } from './options.js';
import { PicopError } from './PicopError.js';
import { entriesOf, type FieldsInit, PicopFields } from './PicopFields.js';

/**
 * Encodes fields into one PiCoP header, to be written before any other byte of a connection.
 * Every name must be an RFC 9110 token and every value VCHAR / SP / HTAB, or it throws
 * {@link PicopError} (`ERR_PICOP_SYNTAX`, `ERR_PICOP_DUPLICATE_FIELD`, `ERR_PICOP_TOO_LARGE`).
 * No fields give the empty header (no context: the default route). In the `picop-go` dialect the
 * names are written as the Go reference writes them: canonical (`Env-Id`), sorted by name.
 *
 * @example
 * socket.write(encodeHeader({ 'Env-Id': 'feature-1' }));
 */
export function encodeHeader(fields: FieldsInit, options?: CodecOptions): Buffer {
  const o = resolveOptions(options);
  const go = o.dialect === 'picop-go';
  // PicopFields cannot hold duplicates; other inputs are checked against the names seen so far.
  const seen: string[] | undefined = fields instanceof PicopFields ? undefined : [];
  let context = '';
  let count = 0;
  const goFields: Array<[string, string]> = [];
  for (const entry of entriesOf(fields)) {
    const name: unknown = entry?.[0];
    const value: unknown = entry?.[1];
    checkName(name);
    checkValue(name, value, go);
    if (seen !== undefined) {
      const key = name.toLowerCase();
      if (seen.includes(key)) {
        throw new PicopError(
          'ERR_PICOP_DUPLICATE_FIELD',
          `Duplicate PiCoP field "${name}" (names are case-insensitive)`,
        );
      }
      seen.push(key);
    }
    if (go) goFields.push([canonicalName(name), value]);
    else context = count++ === 0 ? `${name}:${value}` : `${context}\r\n${name}:${value}`;
  }
  if (go) {
    // As the Go reference writes them: canonical names, sorted by name, CRLF-joined.
    goFields.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    context = goFields.map(([name, value]) => `${name}:${value}`).join('\r\n');
  }
  // Every character was checked to be ASCII, so string length is byte length.
  const n = context.length;
  if (n > o.maxLength) {
    throw new PicopError(
      'ERR_PICOP_TOO_LARGE',
      `PiCoP context of ${n} bytes is over maxLength ${o.maxLength}: raise \`maxLength\` or send fewer fields`,
    );
  }
  const out = Buffer.allocUnsafe(o.prefixLength + n);
  out.set(SIGNATURE, 0);
  out[12] = VERSION_BYTE;
  if (go) out[13] = n;
  else out.writeUInt16BE(n, 13);
  out.write(context, o.prefixLength, 'latin1');
  return out;
}

function checkName(name: unknown): asserts name is string {
  if (typeof name !== 'string') {
    throw new PicopError(
      'ERR_PICOP_INVALID_ARG',
      `PiCoP field names must be strings, got ${typeof name}`,
    );
  }
  if (name.length === 0) throw new PicopError('ERR_PICOP_SYNTAX', 'Empty PiCoP field name');
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c > 0xff || TOKEN[c] !== 1) {
      throw new PicopError(
        'ERR_PICOP_SYNTAX',
        `Invalid character ${describeChar(c)} at index ${i} of PiCoP field name ${JSON.stringify(name)} (names are RFC 9110 tokens)`,
      );
    }
  }
}

/** Go's `textproto.CanonicalMIMEHeaderKey` of a token: `env-id` -> `Env-Id`. */
function canonicalName(name: string): string {
  let out = '';
  let upper = true;
  for (const ch of name) {
    out += upper ? ch.toUpperCase() : ch.toLowerCase();
    upper = ch === '-';
  }
  return out;
}

function checkValue(name: string, value: unknown, go: boolean): asserts value is string {
  if (typeof value !== 'string') {
    throw new PicopError(
      'ERR_PICOP_INVALID_ARG',
      `The value of PiCoP field "${name}" must be a string, got ${typeof value}`,
    );
  }
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c > 0xff || VALUE[c] !== 1 || (go && c === 0x3a)) {
      const why = go && c === 0x3a ? " (':' is not allowed in the picop-go dialect)" : '';
      throw new PicopError(
        'ERR_PICOP_SYNTAX',
        `Invalid character ${describeChar(c)} at index ${i} of the value of PiCoP field "${name}"${why}`,
      );
    }
  }
}

function describeChar(c: number): string {
  return c > 0xff ? `U+${c.toString(16).toUpperCase().padStart(4, '0')}` : describeByte(c);
}
