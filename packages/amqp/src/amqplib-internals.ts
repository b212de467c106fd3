// amqplib's internal Connection (which takes any stream) and ChannelModel (its promise API), and
// 2.x's connection recovery. Its package exports hide lib/, so they are loaded by path, once, and
// checked: an amqplib without them is refused at the first connection with ERR_PICOP_UNSUPPORTED
// naming its version, never later with a TypeError. Tested with amqplib 0.10.4 and 2.x.

import type { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Duplex } from 'node:stream';
import { unsupportedVersion } from '@picop/net-wrap/internal';
import type { ChannelModel as PromiseConnection } from 'amqplib';

const require = createRequire(import.meta.url);
const root = dirname(require.resolve('amqplib'));

interface AmqpConnection extends EventEmitter {
  open(fields: Record<string, unknown>, callback: (err: Error | null) => void): void;
  channels: Array<unknown>;
}

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

/** What this package uses of amqplib beyond its public API. */
export interface AmqplibInternals {
  Connection: new (stream: Duplex) => AmqpConnection;
  ChannelModel: new (connection: AmqpConnection) => PromiseConnection;
  /** 2.x's connection recovery; undefined before 2.0. */
  recovery: Recovery | undefined;
  version: string;
}

let internals: AmqplibInternals | undefined;

/** amqplib's internals, loaded and checked on first use. */
export function amqplibInternals(): AmqplibInternals {
  internals ??= loadInternals(root);
  return internals;
}

/** The internals of the amqplib installed at `root` (its folder), checked. */
export function loadInternals(root: string): AmqplibInternals {
  const load = (file: string): Record<string, unknown> | undefined => {
    try {
      return require(join(root, file)) as Record<string, unknown>;
    } catch {
      return undefined;
    }
  };
  const connection = load('lib/connection.js');
  const channelModel = load('lib/channel_model.js');
  const recovery = load('lib/recovery.js') as Recovery | undefined;
  const Connection = connection?.Connection as AmqplibInternals['Connection'] | undefined;
  const ChannelModel = channelModel?.ChannelModel as AmqplibInternals['ChannelModel'] | undefined;
  const missing = [
    typeof Connection?.prototype.open !== 'function' && 'lib/connection.js Connection',
    typeof ChannelModel !== 'function' && 'lib/channel_model.js ChannelModel',
    recovery !== undefined &&
      typeof recovery.connectWithRecoveryPromise !== 'function' &&
      'lib/recovery.js connectWithRecoveryPromise',
  ].filter((m): m is string => typeof m === 'string');
  // Its exports hide package.json too: read by path.
  const version = (load('package.json')?.version as string | undefined) ?? '(version unknown)';
  if (Connection === undefined || ChannelModel === undefined || missing.length > 0) {
    throw unsupportedVersion({
      label: '@picop/amqp',
      library: 'amqplib',
      missing,
      range: '>=0.10.4 <3',
      installed: { version },
    });
  }
  return { Connection, ChannelModel, recovery, version };
}

/** The amqplib connection under a ChannelModel (channel 0 is always there). */
export function openChannels(model: PromiseConnection): number {
  const channels = (model as unknown as { connection: AmqpConnection }).connection.channels;
  return channels.filter(Boolean).length - 1;
}
