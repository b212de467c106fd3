import { connect } from '@picop/mqtt';
import mqtt, { type IClientOptions } from 'mqtt';
import { describe, expect, it } from 'vitest';
import { resolveOptions } from '../src/options.js';

describe('resolveOptions()', () => {
  it('reads a URL as mqtt.js does, hostname included', () => {
    expect(resolveOptions('mqtt://user:pw@broker:1884?clientId=c1', {})).toMatchObject({
      protocol: 'mqtt',
      host: 'broker',
      hostname: 'broker',
      port: 1884,
      username: 'user',
      password: 'pw',
      clientId: 'c1',
    });
  });

  it('takes a protocol with its colon, as mqtt.js does', () => {
    expect(resolveOptions(undefined, { protocol: 'mqtts:' as 'mqtts', host: 'b' }).protocol).toBe(
      'mqtts',
    );
    expect(
      resolveOptions(undefined, { servers: [{ host: 'b', port: 1, protocol: 'mqtt:' as 'mqtt' }] })
        .servers?.[0]?.protocol,
    ).toBe('mqtt');
  });

  it("says 'Missing protocol' for an address that is no URL", () => {
    expect(() => resolveOptions('127.0.0.1:1883', {})).toThrow('Missing protocol');
  });

  it('refuses what mqtt.js refuses, with its messages', () => {
    const message = (call: () => unknown) => {
      try {
        call();
      } catch (err) {
        return (err as Error).message;
      }
      return 'no error';
    };
    const cases: Array<[string | undefined, IClientOptions]> = [
      ['tcp://broker', { protocol: null as unknown as 'mqtt' }],
      [undefined, { cert: 'c', key: 'k' }],
      [undefined, { cert: 'c', key: 'k', protocol: 'tcp' }],
      [undefined, { cert: 'c', key: 'k', protocol: 'ssl' }],
    ];
    for (const [url, options] of cases) {
      const theirs = message(() =>
        url === undefined ? mqtt.connect(options) : mqtt.connect(url, options),
      );
      expect(theirs).not.toBe('no error');
      expect(message(() => resolveOptions(url, options))).toBe(theirs);
    }
    // And a cert and key make `mqtt` into `mqtts`, as in mqtt.js.
    expect(resolveOptions(undefined, { cert: 'c', key: 'k', protocol: 'mqtt' }).protocol).toBe(
      'mqtts',
    );
  });
});

describe('connect()', () => {
  it('lets mqtt.js end the client from its own constructor, as it does for a bad auth property', async () => {
    const port = Number(process.env.MQTT_PORT ?? 1883);
    const client = connect(`mqtt://127.0.0.1:${port}`, {
      protocolVersion: 5,
      properties: { authenticationData: Buffer.from('x') },
      picop: { routes: { table: {} } },
    });
    const err = await new Promise<Error>((resolve) => client.once('error', resolve));
    expect(err.message).toBe('Packet has no Authentication Method');
    client.end(true);
  });
});
