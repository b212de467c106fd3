import { splitOptions } from '@picop/net-wrap/internal';
import amqplib, { type ChannelModel, type SocketOptions } from 'amqplib';
import { PicopConnection } from './PicopConnection.js';
import type { AmqpUrl, PicopAmqpOptions, PicopSocketOptions } from './types.js';

export { contextOfMessage, withContextHeaders } from './message-context.js';
export { PicopConnection } from './PicopConnection.js';
export type { AmqpIsolation, AmqpUrl, PicopAmqpOptions, PicopSocketOptions } from './types.js';

/**
 * amqplib's `connect`, with one AMQP connection per environment: channels are created on the
 * connection of the active context's Env-Id (a consumer process uses its own, `picop.envId` or
 * `PICOP_ENV_ID`), whose socket starts with that environment's PiCoP header. Publishing adds the
 * Env-Id to each message's headers; consumers run in the context of each message. Resolves once
 * the connection of the active environment is open, rejecting as amqplib does. With
 * `picop: false` (or `PICOP_DISABLED=1`) it is amqplib's own `connect`.
 *
 * @example
 * const conn = await connect('amqp://rabbitmq-proxy', { picop: { envId: process.env.ENV_ID } });
 * const ch = await conn.createChannel();
 * ch.sendToQueue('orders', Buffer.from(json)); // headers: { 'Env-Id': <this request's> }
 */
export async function connect(
  url: AmqpUrl = 'amqp://localhost',
  socketOptions: PicopSocketOptions = {},
): Promise<ChannelModel> {
  const { enabled, picop, library } = splitOptions<PicopAmqpOptions, PicopSocketOptions>(
    socketOptions,
  );
  if (!enabled) return amqplib.connect(url, library as SocketOptions);
  const connection = new PicopConnection(url, socketOptions, picop);
  await connection.open();
  return connection;
}
