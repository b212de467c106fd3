// amqplib's internal Connection (which takes any stream) and ChannelModel (its promise API). Its
// package exports hide lib/, so they are loaded by path. Tested with amqplib 2.x.

import type { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Duplex } from 'node:stream';
import type { ChannelModel as PromiseConnection } from 'amqplib';

const require = createRequire(import.meta.url);
const root = dirname(require.resolve('amqplib'));

interface AmqpConnection extends EventEmitter {
  open(fields: Record<string, unknown>, callback: (err: Error | null) => void): void;
  channels: Array<unknown>;
}

export const { Connection } = require(join(root, 'lib/connection.js')) as {
  Connection: new (stream: Duplex) => AmqpConnection;
};
export const { ChannelModel } = require(join(root, 'lib/channel_model.js')) as {
  ChannelModel: new (connection: AmqpConnection) => PromiseConnection;
};

interface Recovery {
  splitConnectionOptions(o: object): {
    connectionOptions: Record<string, unknown>;
    recovery: unknown;
  };
  recoveryEnabled(recovery: unknown): boolean;
  connectWithRecoveryPromise(
    open: () => Promise<PromiseConnection>,
    recovery: unknown,
  ): Promise<PromiseConnection>;
}

/** amqplib 2.x connection recovery, if this amqplib has it. */
export const recovery: Recovery | undefined = (() => {
  try {
    return require(join(root, 'lib/recovery.js')) as Recovery;
  } catch {
    return undefined;
  }
})();

export const amqplibVersion: string = require(join(root, 'package.json')).version;

/** The amqplib connection under a ChannelModel (channel 0 is always there). */
export function openChannels(model: PromiseConnection): number {
  const channels = (model as unknown as { connection: AmqpConnection }).connection.channels;
  return channels.filter(Boolean).length - 1;
}
