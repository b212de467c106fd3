import { type Context, context } from '@opentelemetry/api';
import { connect, connectTls } from '@picop/net-wrap';
import type { IClientOptions, StreamBuilder } from 'mqtt';
import { isTls } from './options.js';

/**
 * mqtt.js's stream builder for one connection: every socket (the first and each reconnect's) starts
 * with `header`, then TLS for `mqtts:`. The socket is made in `ctx`, the connection's own context,
 * so the packets it reads are handled there and not in the context that opened the connection.
 * With `servers`, each attempt takes the next one, as mqtt.js does.
 */
export function streamOf(options: IClientOptions, header: Buffer, ctx: Context): StreamBuilder {
  let attempt = 0;
  return (client) => {
    const server = options.servers?.[attempt++ % options.servers.length];
    const protocol = server?.protocol ?? options.protocol;
    const host = server?.host ?? options.hostname ?? options.host ?? 'localhost';
    const tls = isTls(protocol);
    const port = server?.port ?? options.port ?? (tls ? 8883 : 1883);
    return context.with(ctx, () => {
      // mqtt.js's own sockets: Nagle on, no TCP keep-alive (MQTT has its own PINGREQ).
      const socket = { host, port, header, noDelay: false, keepAlive: false };
      if (!tls) return connect(socket);
      const { protocol: _p, servers: _s, host: _h, port: _o, ...tlsOptions } = options;
      const rejectUnauthorized = options.rejectUnauthorized !== false;
      const secure = connectTls({
        ...(tlsOptions as Parameters<typeof connectTls>[0]),
        ...socket,
        rejectUnauthorized,
      });
      // As mqtt.js's own TLS stream: a TLS error reaches the client (older mqtt.js releases pass
      // on only socket errors of a custom stream, and would retry a bad certificate silently).
      const tlsError = (err: Error) => {
        if (rejectUnauthorized) client.emit('error', err);
        secure.end();
      };
      secure.on('error', tlsError);
      secure.on('secureConnect', () => secure.removeListener('error', tlsError));
      return secure;
    });
  };
}
