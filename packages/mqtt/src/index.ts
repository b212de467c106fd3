import { splitOptions } from '@picop/net-wrap/internal';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { type ClientOptions, resolveOptions } from './options.js';
import { PicopMqttClient, type PicopMqttOptions } from './PicopMqttClient.js';

export type { ClientOptions } from './options.js';
export {
  contextOfPacket,
  ISOLATED_TOPICS,
  type MqttIsolation,
  PicopMqttClient,
  type PicopMqttOptions,
} from './PicopMqttClient.js';

/**
 * mqtt.js's `connect`, with one MQTT connection per environment. The client it returns is itself
 * the connection of work without an Env-Id (a worker's: `picop.envId` / `PICOP_ENV_ID`);
 * `publish` and `subscribe` go over the connection of the environment active at the call, each
 * socket (reconnects too) starting with that environment's PiCoP header. With MQTT 5 every
 * message carries the Env-Id as a user property, and 'message' listeners run in the message's
 * environment. With `picop: false` (or `PICOP_DISABLED=1`) it is mqtt.js's own `connect`.
 * Throws `ERR_PICOP_UNSUPPORTED` for WebSocket, SOCKS and Unix-socket transports.
 *
 * @example
 * const client = connect('mqtt://mqtt-proxy:1883', { protocolVersion: 5 });
 * client.publish('orders/new', JSON.stringify(order)); // this request's environment
 */
export function connect(url: string, options?: ClientOptions<PicopMqttOptions>): MqttClient;
export function connect(options: ClientOptions<PicopMqttOptions>): MqttClient;
export function connect(
  url: string | ClientOptions<PicopMqttOptions>,
  options: ClientOptions<PicopMqttOptions> = {},
): MqttClient {
  if (typeof url === 'object') [url, options] = ['', url];
  const { enabled, picop, library } = splitOptions<
    PicopMqttOptions,
    ClientOptions<PicopMqttOptions>
  >(options);
  if (!enabled) return mqtt.connect(url, library as IClientOptions);
  return new PicopMqttClient(resolveOptions(url, library), picop);
}

/**
 * mqtt.js's `connectAsync`: {@link connect}, resolved once the connection of work without an
 * Env-Id is up (or ended), rejected with the first error (and the client ended), as mqtt.js does.
 *
 * @example
 * const client = await connectAsync('mqtt://mqtt-proxy:1883', { protocolVersion: 5 });
 */
export function connectAsync(
  url: string,
  options?: ClientOptions<PicopMqttOptions>,
  allowRetries?: boolean,
): Promise<MqttClient>;
export function connectAsync(options: ClientOptions<PicopMqttOptions>): Promise<MqttClient>;
export function connectAsync(
  url: string | ClientOptions<PicopMqttOptions>,
  options: ClientOptions<PicopMqttOptions> = {},
  allowRetries = true,
): Promise<MqttClient> {
  if (typeof url === 'object') [url, options] = ['', url];
  return new Promise((resolve, reject) => {
    const client = connect(url, options);
    const settle = (err?: Error) => {
      client.off('connect', onConnect).off('end', onConnect).off('error', settle);
      client.off('close', onClose);
      if (err === undefined) return resolve(client);
      client.end();
      reject(err);
    };
    const onConnect = () => settle();
    const onClose = () => settle(new Error("Couldn't connect to server"));
    client.on('connect', onConnect).on('end', onConnect).on('error', settle);
    if (!allowRetries) client.on('close', onClose);
  });
}
