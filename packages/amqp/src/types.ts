import type { PicopWrapperOptions, SelectiveOptions } from '@picop/net-wrap';
import type { Options } from 'amqplib';

/** The `picop` key of the socket options. */
export interface PicopAmqpOptions extends PicopWrapperOptions, SelectiveOptions {
  /**
   * Most environments with a connection at once; past it the least recently used idle one (no
   * open channel) is closed.
   * @default 32
   */
  maxConnections?: number;
}

/** amqplib's socket options plus `picop` (`false` turns PiCoP off: plain amqplib). */
export type PicopSocketOptions = Record<string, unknown> & {
  picop?: PicopAmqpOptions | false;
  /** amqplib 2.x connection recovery; each new connection carries the header. */
  recovery?: unknown;
};

/** A URL string or amqplib's object form. */
export type AmqpUrl = string | Options.Connect;
