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
    // Set once a server never answered the ready check after the header: Redis itself.
    #notPicop: PicopError | undefined;

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
          // ioredis fails every queued command with this and stops reconnecting.
          if (this.#notPicop !== undefined) {
            reject(this.#notPicop);
            return;
          }
          const address = {
            host: o.host ?? 'localhost',
            port: o.port ?? 6379,
            family: o.family,
            header,
          };
          try {
            this.stream = o.tls ? connectTls({ ...o.tls, ...address }) : connect(address);
          } catch (err) {
            reject(err);
            return;
          }
          this.stream.once('error', (err: Error) => {
            this.firstError = err;
          });
          if (header.length > 0 && o.enableReadyCheck !== false && !o.tls) {
            this.#watchReadyCheck(this.stream as Socket, address, o.connectTimeout ?? 10_000);
          }
          resolve(this.stream as Socket);
        });
      });
    }

    /**
     * Redis itself reads the header as an unfinished inline command (its NUL byte) and answers
     * nothing, so the ready check's INFO waits forever; a picop-proxy relays the answer at once.
     * No byte within `timeoutMs` of connecting: Redis itself, said once, with the options.
     */
    #watchReadyCheck(socket: Socket, address: { host: string; port: number }, timeoutMs: number) {
      let timer: NodeJS.Timeout | undefined;
      const stop = () => clearTimeout(timer);
      socket.once('connect', () => {
        timer = setTimeout(() => {
          if (socket.bytesRead > 0) return;
          this.#notPicop = new PicopError(
            'ERR_PICOP_PEER_CLOSED',
            `@picop/redis: ${address.host}:${address.port} answered nothing within ${timeoutMs} ms (connectTimeout) of its PiCoP header: it is most likely Redis itself, which reads the header as an unfinished command, not a picop-proxy. Point the client at the picop-proxy in front of Redis, or reach Redis directly with \`picop.routes\` or \`picop.isolate\` (or \`picop: false\`)`,
          );
          socket.destroy(this.#notPicop);
        }, timeoutMs);
      });
      socket.once('data', stop);
      socket.once('close', stop);
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
