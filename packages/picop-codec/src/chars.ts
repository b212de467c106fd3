// RFC 9110 tchar: "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
export const TOKEN = new Uint8Array(256);
// field-value octets: VCHAR / SP / HTAB
export const VALUE = new Uint8Array(256);

for (const c of "!#$%&'*+-.^_`|~") TOKEN[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) TOKEN[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) TOKEN[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) TOKEN[c] = 1;
for (let c = 0x21; c <= 0x7e; c++) VALUE[c] = 1;
VALUE[0x20] = 1;
VALUE[0x09] = 1;

export const COLON = 0x3a;
export const CR = 0x0d;
export const LF = 0x0a;

/** How a byte is shown in an error message: `0x0d ('\r')`. */
export function describeByte(byte: number): string {
  const hex = `0x${byte.toString(16).padStart(2, '0')}`;
  return byte >= 0x20 && byte < 0x7f ? `${hex} ('${String.fromCharCode(byte)}')` : hex;
}
