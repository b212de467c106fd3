import type { Socket } from 'node:net';
import {
  type Dialect,
  HeaderDecoder,
  matchSignature,
  PicopError,
  type PicopFields,
  SIGNATURE,
} from '@picop/codec';
import { DEFAULT_HEADER_TIMEOUT_MS } from './constants.js';

/** Options of {@link readHeader}. */
export interface ReadHeaderOptions {
  /**
   * `'required'`: a stream without a header fails with `ERR_PICOP_SIGNATURE`.
   * `'optional'`: a stream that does not start with the signature is handed on untouched,
   * decided at its first byte that differs. Only for protocols whose client speaks first.
   * @default 'required'
   */
  mode?: 'required' | 'optional';
  /**
   * Time allowed for the whole header; past it the socket is destroyed with `ERR_PICOP_TIMEOUT`.
   * @default 5000
   */
  timeoutMs?: number;
  /** @default 4096 */
  maxLength?: number;
  /** @default 'spec' */
  dialect?: Dialect;
}

/**
 * Reads the PiCoP header off an accepted socket. Resolves with its fields (empty for an empty
 * header), or `undefined` in optional mode for a plain stream. Every byte after the header is put
 * back (`unshift`), and the socket is left as it was accepted: the next reader (`on('data')`,
 * `pipe`) sees exactly what the peer sent after the header. On a bad, truncated or late header
 * the socket is destroyed and the promise rejects with the `PicopError`.
 *
 * @example
 * net.createServer(async (socket) => {
 *   const fields = await readHeader(socket, { timeoutMs: 2000 });
 *   route(fields?.get('env-id'), socket);
 * });
 */
export function readHeader(
  socket: Socket,
  options: ReadHeaderOptions = {},
): Promise<PicopFields | undefined> {
  const { mode = 'required', timeoutMs = DEFAULT_HEADER_TIMEOUT_MS } = options;
  const decoder = new HeaderDecoder({ maxLength: options.maxLength, dialect: options.dialect });
  return new Promise((resolve, reject) => {
    // Optional mode: bytes held while they still agree with the signature (at most 12).
    let held: Buffer | undefined = mode === 'optional' ? Buffer.alloc(0) : undefined;

    const cleanup = () => {
      clearTimeout(timer);
      socket.off('readable', onReadable);
      socket.off('end', onEnd);
      socket.off('error', onError);
      socket.off('close', onClose);
    };
    let finished = false;
    // With its last 'readable' listener gone the stream is back in its initial mode, so whoever
    // reads next (a 'data' listener, pipe) starts it, the unshifted bytes first.
    const handOn = (rest: Buffer) => {
      finished = true;
      cleanup();
      if (rest.length > 0) socket.unshift(rest);
    };
    const fail = (err: unknown) => {
      finished = true;
      cleanup();
      // The promise carries the error; an 'error' event here would have no listener.
      socket.destroy();
      reject(err);
    };
    const onReadable = () => {
      while (!finished) {
        const chunk = socket.read() as Buffer | null;
        if (chunk === null) return;
        onData(chunk);
      }
    };
    const onData = (chunk: Buffer) => {
      try {
        if (held !== undefined) {
          const seen = held.length === 0 ? chunk : Buffer.concat([held, chunk]);
          const match = matchSignature(seen);
          if (match === 'mismatch') {
            handOn(seen);
            resolve(undefined);
            return;
          }
          if (match === 'partial') {
            held = seen;
            return;
          }
          held = undefined;
          chunk = seen;
        }
        const done = decoder.push(chunk);
        if (done !== undefined) {
          handOn(done.rest);
          resolve(done.fields);
        }
      } catch (err) {
        fail(err);
      }
    };
    const onEnd = () => {
      if (held !== undefined && held.length === 0) {
        // Optional mode, a plain peer that sent nothing: nothing to decide, hand the stream on.
        cleanup();
        resolve(undefined);
        return;
      }
      try {
        decoder.end();
      } catch (err) {
        fail(err);
      }
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    const onClose = () => {
      cleanup();
      reject(
        new PicopError(
          'ERR_PICOP_TRUNCATED',
          `Connection closed after ${decoder.bytesRead} bytes of the PiCoP header`,
        ),
      );
    };
    const timer = setTimeout(() => {
      const got = held?.length ?? decoder.bytesRead;
      fail(
        new PicopError(
          'ERR_PICOP_TIMEOUT',
          `No complete PiCoP header within ${timeoutMs} ms (got ${got} of at least ${SIGNATURE.length + 3} bytes) from ${peerOf(socket)}: raise \`timeoutMs\``,
        ),
      );
    }, timeoutMs);
    timer.unref?.();

    socket.on('readable', onReadable);
    socket.on('end', onEnd);
    socket.on('error', onError);
    socket.on('close', onClose);
  });
}

export function peerOf(socket: Socket): string {
  return socket.remoteAddress === undefined
    ? 'an unknown peer'
    : `${socket.remoteAddress}:${socket.remotePort}`;
}
