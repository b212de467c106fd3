/** Every code a {@link PicopError} can carry, across all @picop packages. */
export type PicopErrorCode =
  | 'ERR_PICOP_SIGNATURE'
  | 'ERR_PICOP_VERSION'
  | 'ERR_PICOP_SYNTAX'
  | 'ERR_PICOP_DUPLICATE_FIELD'
  | 'ERR_PICOP_TOO_LARGE'
  | 'ERR_PICOP_TRUNCATED'
  | 'ERR_PICOP_TIMEOUT'
  | 'ERR_PICOP_INVALID_ARG'
  | 'ERR_PICOP_INVALID_STATE'
  | 'ERR_PICOP_TOO_MANY_CONTEXTS'
  /** A wrapped library's idiom or option that PiCoP cannot route (a WebSocket transport, say). */
  | 'ERR_PICOP_UNSUPPORTED'
  /**
   * The peer closed the connection right after its PiCoP header, before a byte of answer: a
   * server that does not read PiCoP, or a proxy that could not reach the destination.
   */
  | 'ERR_PICOP_PEER_CLOSED'
  /** An operation of an environment that no PiCoP wrapper routed (`PicopGuard`, `mode: 'throw'`). */
  | 'ERR_PICOP_UNROUTED';

export interface PicopErrorOptions {
  /** Byte offset from the start of the header where the problem was found. */
  offset?: number;
  /** The lower-level error, if any. */
  cause?: unknown;
}

/**
 * The one error type of every @picop package. Switch on `code`, not on the message.
 *
 * @example
 * try { decodeHeader(bytes) } catch (err) {
 *   if (err instanceof PicopError && err.code === 'ERR_PICOP_TRUNCATED') wait();
 * }
 */
export class PicopError extends Error {
  override readonly name = 'PicopError';
  readonly code: PicopErrorCode;
  /** Byte offset from the start of the header, when the error is about a byte. */
  readonly offset: number | undefined;

  constructor(code: PicopErrorCode, message: string, options: PicopErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.offset = options.offset;
  }
}

/** True for a {@link PicopError}, also one made by another copy of this package (CJS and ESM). */
export function isPicopError(err: unknown): err is PicopError {
  return (
    err instanceof PicopError ||
    (err instanceof Error &&
      err.name === 'PicopError' &&
      typeof (err as { code?: unknown }).code === 'string')
  );
}
