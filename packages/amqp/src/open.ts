import { connectTls, connect as tcpConnect } from '@picop/net-wrap';
import { isolationName, storeName } from '@picop/net-wrap/internal';
import type { Route } from '@picop/routes';
import { credentials, type ChannelModel as PromiseConnection } from 'amqplib';
import { amqplibInternals } from './amqplib-internals.js';
import type { AmqpIsolation, AmqpUrl } from './types.js';

const CAPABILITIES = {
  publisher_confirms: true,
  exchange_exchange_bindings: true,
  'basic.nack': true,
  consumer_cancel_notify: true,
  'connection.blocked': true,
  authentication_failure_close: true,
};

interface Endpoint {
  tls: boolean;
  host: string;
  port: number;
  fields: Record<string, unknown>;
}

const num = (value: unknown): number | undefined =>
  value === undefined || value === null || value === '' ? undefined : Number(value);

/** Where to connect and the connection.open fields, from a URL as amqplib reads it. */
export function endpointOf(url: AmqpUrl, options: Record<string, unknown>): Endpoint {
  let protocol: string;
  let host: string;
  let port: number | undefined;
  let user: string;
  let pass: string;
  let vhost: string;
  let query: Record<string, unknown>;
  if (typeof url === 'string') {
    const parts = new URL(url);
    protocol = parts.protocol;
    host = parts.hostname.replace(/^\[|\]$/g, '');
    port = num(parts.port);
    const hasUser = parts.username !== '' || parts.password !== '';
    user = hasUser ? decodeURIComponent(parts.username) : 'guest';
    pass = hasUser ? decodeURIComponent(parts.password) : 'guest';
    vhost = parts.pathname.length > 1 ? decodeURIComponent(parts.pathname.slice(1)) : '/';
    query = Object.fromEntries(parts.searchParams);
  } else {
    protocol = `${url.protocol ?? 'amqp'}:`;
    host = url.hostname ?? 'localhost';
    port = url.port;
    user = url.username ?? 'guest';
    pass = url.password ?? 'guest';
    vhost = url.vhost ?? '/';
    query = url as Record<string, unknown>;
  }
  if (protocol !== 'amqp:' && protocol !== 'amqps:') {
    throw new Error(`Expected amqp: or amqps: as the protocol; got ${protocol}`);
  }
  const tls = protocol === 'amqps:';
  const cred =
    (options.credentials as ReturnType<typeof credentials.plain> | undefined) ??
    credentials.plain(user, pass);
  return {
    tls,
    host,
    port: port ?? (tls ? 5671 : 5672),
    fields: {
      clientProperties: {
        product: '@picop/amqp (amqplib)',
        version: amqplibInternals().version,
        platform: `Node.JS ${process.version}`,
        capabilities: CAPABILITIES,
        ...(options.clientProperties as object | undefined),
      },
      mechanism: cred.mechanism,
      response: cred.response(),
      locale: query.locale ?? 'en_US',
      channelMax: num(query.channelMax) ?? 0,
      frameMax: num(query.frameMax) ?? 131072,
      // No preference: amqplib 2.x says null, 0.10 says 0 (both mean the server's value).
      heartbeat: num(query.heartbeat) ?? (amqplibInternals().version.startsWith('0.') ? 0 : null),
      maxFrameSize: num(query.maxFrameSize),
      virtualHost: vhost,
      capabilities: '',
      insist: 0,
    },
  };
}

/**
 * Opens one AMQP connection whose socket starts with `header`, as amqplib's `connect` would
 * (socket options `noDelay`, `keepAlive`, `keepAliveDelay`, `timeout`, TLS options for amqps:).
 */
export function openModel(
  url: AmqpUrl,
  options: Record<string, unknown>,
  header: Buffer,
): Promise<PromiseConnection> {
  return new Promise((resolve, reject) => {
    let endpoint: Endpoint;
    try {
      endpoint = endpointOf(url, options);
    } catch (err) {
      reject(err);
      return;
    }
    const { host, port, fields } = endpoint;
    const keepAlive = options.keepAlive === true;
    const common = {
      host,
      port,
      header,
      noDelay: options.noDelay === true,
      keepAlive,
      keepAliveInitialDelay: Number(options.keepAliveDelay ?? 0),
    };
    const socket = endpoint.tls
      ? connectTls({ servername: host, ...(options as object), ...common })
      : tcpConnect(common);
    let opened = false;
    const timeout = num(options.timeout);
    if (timeout !== undefined) {
      socket.setTimeout(timeout, () => {
        socket.destroy();
        reject(new Error('connect ETIMEDOUT'));
      });
    }
    socket.once('error', (err) => {
      if (!opened) reject(err);
    });
    socket.once(endpoint.tls ? 'secureConnect' : 'connect', () => {
      const { Connection, ChannelModel } = amqplibInternals();
      const connection = new Connection(socket);
      connection.open(fields, (err) => {
        if (timeout !== undefined) socket.setTimeout(0);
        if (err !== null) {
          socket.destroy();
          reject(err);
          return;
        }
        opened = true;
        resolve(new ChannelModel(connection));
      });
    });
  });
}

/**
 * The URL of environment `envId`'s connection: its route's host and port (proxyless), and its
 * virtual host (isolation); the URL itself otherwise.
 */
export function environmentUrl(
  url: AmqpUrl,
  route: Route | undefined,
  isolate: AmqpIsolation | undefined,
  envId: string | undefined,
): { url: AmqpUrl; vhost: string | undefined } {
  const name =
    isolate === undefined || envId === undefined ? undefined : isolate.vhost(isolationName(envId));
  // The virtual host travels as an AMQP short string: at most 255 bytes.
  const vhost =
    name === undefined || envId === undefined
      ? undefined
      : storeName(name, envId, {
          kind: 'RabbitMQ virtual host',
          option: 'isolate.vhost',
          maxBytes: 255,
          forbidden: /\u0000/,
        });
  if (route === undefined && vhost === undefined) return { url, vhost };
  if (typeof url !== 'string') {
    return {
      url: {
        ...url,
        ...(route && { hostname: route.host, port: route.port }),
        ...(vhost !== undefined && { vhost }),
      },
      vhost,
    };
  }
  const own = new URL(url);
  if (route !== undefined) {
    own.hostname = route.host.includes(':') ? `[${route.host}]` : route.host;
    own.port = String(route.port);
  }
  if (vhost !== undefined) own.pathname = `/${encodeURIComponent(vhost)}`;
  return { url: own.toString(), vhost };
}
