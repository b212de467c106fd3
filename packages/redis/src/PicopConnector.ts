import type { Socket } from 'node:net';
import { PicopError } from '@picop/codec';
import { connect, connectTls } from '@picop/net-wrap';
import { AbstractConnector, type RedisOptions } from 'ioredis';

/**
 * An ioredis `Connector` whose every socket (the first and each reconnect) starts with `header`.
 * With `tls`, the header goes in clear and TLS runs over the same socket.
 */
export function connectorFor(header: Buffer): NonNullable<RedisOptions['Connector']> {
  return class PicopConnector extends AbstractConnector {
    readonly #options: RedisOptions;

    constructor(options: unknown) {
      const o = options as RedisOptions;
      super(o.disconnectTimeout ?? 2000);
      this.#options = o;
    }

    override connect(_: unknown): Promise<Socket> {
      this.connecting = true;
      const o = this.#options;
      return new Promise((resolve, reject) => {
        // A tick later, as ioredis's own connector does, so a disconnect() meanwhile wins.
        process.nextTick(() => {
          if (!this.connecting) {
            reject(new Error('Connection is closed.'));
            return;
          }
          try {
            const address = {
              host: o.host ?? 'localhost',
              port: o.port ?? 6379,
              family: o.family,
              header,
            };
            this.stream = o.tls ? connectTls({ ...o.tls, ...address }) : connect(address);
          } catch (err) {
            reject(err);
            return;
          }
          this.stream.once('error', (err: Error) => {
            this.firstError = err;
          });
          resolve(this.stream as Socket);
        });
      });
    }
  };
}

/** Throws for options a header cannot go with. */
export function checkOptions(options: RedisOptions): void {
  const o = options as RedisOptions & { path?: string; sentinels?: unknown };
  if (o.path) {
    throw new PicopError(
      'ERR_PICOP_INVALID_ARG',
      '@picop/redis connects over TCP to a PiCoP proxy: a unix socket `path` cannot carry the header; set `picop: false` to use it',
    );
  }
  if (o.sentinels) {
    throw new PicopError(
      'ERR_PICOP_INVALID_ARG',
      '@picop/redis does not support Sentinel: put the PiCoP proxy in front of the master, or set `picop: false`',
    );
  }
  if (o.Connector) {
    throw new PicopError(
      'ERR_PICOP_INVALID_ARG',
      '@picop/redis brings its own `Connector`; set `picop: false` to pass yours',
    );
  }
}
