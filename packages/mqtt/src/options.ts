// mqtt.js's `connect(url, options)` arguments, read as mqtt.js reads them, for the transports the
// PiCoP proxy can route: MQTT over TCP, and over TLS after the header.
import { PicopError } from '@picop/codec';
import type { IClientOptions } from 'mqtt';

const TCP = new Set(['mqtt', 'tcp']);
const TLS = new Set(['mqtts', 'ssl', 'tls']);

/** mqtt.js's client options plus `picop`. */
export type ClientOptions<P> = IClientOptions & { picop?: P | false };

/**
 * The options of `connect(url, options)` merged as mqtt.js merges them (the options win over the
 * URL; `user:password@`, `?clientId=`, `mqtts` when `cert` and `key` are given). Throws
 * `ERR_PICOP_UNSUPPORTED` for a transport other than TCP or TLS (WebSocket, SOCKS, a Unix socket).
 */
export function resolveOptions(url: string | undefined, options: IClientOptions): IClientOptions {
  let resolved: IClientOptions = { ...options };
  if (url !== undefined && url !== '') {
    // mqtt.js's own check, with its message ('127.0.0.1:1883' is no URL of a broker).
    if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) throw new Error('Missing protocol');
    const parsed = new URL(url);
    const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
    const fromUrl: IClientOptions = {
      protocol: parsed.protocol as IClientOptions['protocol'],
      host,
      hostname: host,
    };
    if (parsed.port !== '') fromUrl.port = Number(parsed.port);
    if (parsed.username !== '') fromUrl.username = decodeURIComponent(parsed.username);
    if (parsed.password !== '') fromUrl.password = decodeURIComponent(parsed.password);
    const clientId = parsed.searchParams.get('clientId');
    if (clientId !== null) fromUrl.clientId = clientId;
    resolved = { ...fromUrl, ...options };
    // mqtt.js's own check, with its message: `{ protocol: null }` wins over the URL's.
    if (!resolved.protocol) throw new Error('Missing protocol');
  }
  if (resolved.auth !== undefined) {
    const [, username, password] = /^(.+?):(.+)$/.exec(resolved.auth) ?? [undefined, resolved.auth];
    resolved.username = username;
    if (password !== undefined) resolved.password = password;
  }
  // mqtt.js takes a protocol with or without its colon ('mqtts:' or 'mqtts').
  const bare = (protocol: string | undefined) =>
    protocol?.replace(/:$/, '') as IClientOptions['protocol'];
  // mqtt.js's own checks, with its messages: a cert and key want a secure protocol, and only
  // `mqtt` becomes `mqtts`.
  if (resolved.cert && resolved.key) {
    if (!resolved.protocol) throw new Error('Missing secure protocol key');
    const named = bare(resolved.protocol) as string;
    if (named === 'mqtt') resolved.protocol = 'mqtts';
    else if (named !== 'mqtts' && (TCP.has(named) || TLS.has(named))) {
      throw new Error(`Unknown protocol for secure connection: "${named}"!`);
    }
  }
  resolved.protocol = bare(resolved.protocol) ?? 'mqtt';
  if (resolved.servers !== undefined) {
    resolved.servers = resolved.servers.map((s) => ({
      ...s,
      protocol: bare(s.protocol) as typeof s.protocol,
    }));
  }
  const transports = [resolved.protocol, ...(resolved.servers ?? []).map((s) => s.protocol)];
  for (const protocol of transports) {
    if (protocol !== undefined && !TCP.has(protocol) && !TLS.has(protocol)) {
      throw new PicopError(
        'ERR_PICOP_UNSUPPORTED',
        `@picop/mqtt: protocol ${JSON.stringify(protocol)} is not supported: PiCoP routes MQTT over TCP (mqtt:) and TLS (mqtts:)`,
      );
    }
  }
  // mqtt.js reads MQTTJS_SOCKS_PROXY when the option is absent.
  const socks = resolved.socksProxy ?? (process.env.MQTTJS_SOCKS_PROXY || undefined);
  for (const [option, value] of [
    ['socksProxy', socks],
    ['unixSocket', resolved.unixSocket],
    ['path', resolved.path],
  ] as const) {
    if (value) {
      throw new PicopError(
        'ERR_PICOP_UNSUPPORTED',
        `@picop/mqtt: the \`${option}\` option is not supported: PiCoP routes MQTT over TCP (mqtt:) and TLS (mqtts:)`,
      );
    }
  }
  if (resolved.clean === false && !resolved.clientId) {
    // mqtt.js's own check, with its message.
    throw new Error('Missing clientId for unclean clients');
  }
  return resolved;
}

/** Whether a connection with these options (and this server of `servers`) uses TLS. */
export function isTls(protocol: string | undefined): boolean {
  return protocol !== undefined && TLS.has(protocol);
}
