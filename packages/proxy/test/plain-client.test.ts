import { describe, expect, it } from 'vitest';
import { SIGNATURE_HEX } from '../../../test/support/header.js';
import { plainClientOf } from '../src/plain-client.js';

const startup = (code: number) => {
  const b = Buffer.alloc(8);
  b.writeUInt32BE(8, 0);
  b.writeUInt32BE(code, 4);
  return b;
};

describe('plainClientOf()', () => {
  it.each([
    ['*1\r\n$4\r\nPING\r\n', 'a Redis client (RESP)'],
    ['PING\r\n', 'a Redis client (RESP)'],
    ['GET / HTTP/1.1\r\n', 'an HTTP client'],
    ['AMQP\u0000\u0000\u0009\u0001', 'an AMQP client'],
    ['\u0010\u0010\u0000\u0004MQTT\u0004', 'an MQTT client'],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n', "a PROXY protocol sender (HAProxy's, not PiCoP)"],
  ])('%j is %s', (text, kind) => {
    expect(plainClientOf(Buffer.from(text, 'latin1'))).toBe(kind);
  });

  it('knows TLS, PostgreSQL and PROXY v2 by their bytes', () => {
    expect(plainClientOf(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]))).toBe(
      'a TLS client (a ClientHello)',
    );
    expect(plainClientOf(startup(0x0003_0000))).toBe('a PostgreSQL client');
    expect(plainClientOf(startup(80_877_103))).toBe('a PostgreSQL client');
    const v2 = Buffer.from(`${SIGNATURE_HEX}2111000c`, 'hex');
    expect(plainClientOf(v2)).toBe("a PROXY protocol sender (HAProxy's, not PiCoP)");
  });

  it('says nothing of bytes it does not know', () => {
    expect(plainClientOf(Buffer.from([0x00, 0xff, 0x13]))).toBeUndefined();
    expect(plainClientOf(Buffer.alloc(0))).toBeUndefined();
  });
});
