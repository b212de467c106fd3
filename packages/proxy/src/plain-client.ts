// What a connection that did not start with a PiCoP header most likely is, from its first bytes:
// so the proxy's log says "a plain Redis client" rather than "byte 0 is 0x2a".

const HTTP_METHOD = /^(GET|HEAD|POST|PUT|DELETE|OPTIONS|PATCH|CONNECT|TRACE) /;

/**
 * The kind of plain client whose first bytes these are (`'a Redis client (RESP)'`), or
 * `undefined` when they look like nothing known.
 */
export function plainClientOf(bytes: Buffer): string | undefined {
  if (bytes.length === 0) return undefined;
  const text = bytes.toString('latin1', 0, Math.min(bytes.length, 16));
  if (bytes[0] === 0x16 && bytes[1] === 0x03) return 'a TLS client (a ClientHello)';
  if (HTTP_METHOD.test(text)) return 'an HTTP client';
  // PROXY protocol v1, or v2: PiCoP's signature, then version 2 in the upper nibble.
  if (text.startsWith('PROXY ') || (bytes.length > 12 && (bytes[12] as number) >> 4 === 2)) {
    return "a PROXY protocol sender (HAProxy's, not PiCoP)";
  }
  if (text.startsWith('AMQP')) return 'an AMQP client';
  if (bytes[0] === 0x10 && text.includes('MQ')) return 'an MQTT client';
  if (bytes.length >= 8) {
    const code = bytes.readUInt32BE(4);
    // PostgreSQL's StartupMessage (protocol 3.0), SSLRequest or GSSENCRequest.
    if (code === 0x0003_0000 || code === 80_877_103 || code === 80_877_104) {
      return 'a PostgreSQL client';
    }
  }
  if (bytes[0] === 0x2a || bytes[0] === 0x24 || /^[A-Za-z]+( |\r\n)/.test(text)) {
    return 'a Redis client (RESP)';
  }
  return undefined;
}
