import type { Socket } from 'node:net';
import type { PicopFields } from '@picop/codec';
import { HeaderReader, type HeaderReaderOptions, type HeaderReadResult } from '@picop/codec';
import { DEFAULT_HEADER_TIMEOUT_MS } from './constants.js';

/** Options of {@link readHeader}. */
export interface ReadHeaderOptions extends HeaderReaderOptions {
  /**
   * Time allowed for the whole header; past it the socket is destroyed with `ERR_PICOP_TIMEOUT`.
   * @default 5000
   */
  timeoutMs?: number;
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
  const { timeoutMs = DEFAULT_HEADER_TIMEOUT_MS } = options;
  const reader = new HeaderReader(options);
  return new Promise((resolve, reject) => {
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
    const handOn = ({ fields, rest }: HeaderReadResult) => {
      finished = true;
      cleanup();
      if (rest.length > 0) socket.unshift(rest);
      resolve(fields);
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
        try {
          const done = reader.push(chunk);
          if (done !== undefined) handOn(done);
        } catch (err) {
          fail(err);
        }
      }
    };
    const onEnd = () => {
      try {
        handOn(reader.end());
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
      reject(reader.closedError());
    };
    const timer = setTimeout(() => {
      fail(reader.timeoutError(timeoutMs, peerOf(socket)));
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
