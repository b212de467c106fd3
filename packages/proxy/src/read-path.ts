// How the proxy reads its sockets. The fast path reads through `onread` into one shared buffer:
// no buffer allocation, stream push or 'data' event per chunk. Node's net.Server offers no
// `onread`, so the fast path moves an accepted socket's handle into a socket that has one, which
// uses Node internals (`_handle`, `new net.Socket({ handle })`). It runs only where a feature check
// finds them; elsewhere, or with PICOP_PROXY_RELAY=portable, the portable path reads with plain
// 'data' events and pause()/resume(). Both pass the same relay tests.
import net from 'node:net';

/**
 * Called with each chunk read. `owned`: the chunk is the caller's to keep; otherwise it is a view
 * of the shared read buffer, to copy before the next read reuses it. Returns false to stop reading
 * until the socket's `resume()`.
 */
export type OnChunk = (chunk: Buffer, owned: boolean) => boolean;

// Reads run one at a time on the event loop, and every read is copied on before the next.
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

/** Which path this process uses: `'onread'` or `'portable'`. */
export const READ_PATH: 'onread' | 'portable' =
  process.env.PICOP_PROXY_RELAY === 'portable' || !onreadAdoptionWorks() ? 'portable' : 'onread';

/** Whether this Node has what the fast path relies on. */
function onreadAdoptionWorks(): boolean {
  const probe = new net.Socket();
  const works = '_handle' in probe;
  probe.destroy();
  return works;
}

/** A chunk's bytes the caller may keep: a view of the shared buffer is copied (pooled). */
export function owned(chunk: Buffer, isOwned: boolean): Buffer {
  if (isOwned) return chunk;
  const copy = Buffer.allocUnsafe(chunk.length);
  chunk.copy(copy);
  return copy;
}

function reading(socket: net.Socket, onChunk: OnChunk): net.Socket {
  socket.on('data', (chunk: Buffer) => {
    if (!onChunk(chunk, true)) socket.pause();
  });
  return socket;
}

/**
 * The accepted (paused) socket, reading into `onChunk`. On the fast path, its connection moved to
 * a socket that reads through `onread` (the husk closes; the server no longer counts it).
 */
export function readAccepted(accepted: net.Socket, onChunk: OnChunk): net.Socket {
  if (READ_PATH === 'portable') {
    const socket = reading(accepted, onChunk);
    socket.resume();
    return socket;
  }
  const husk = accepted as unknown as { _handle: unknown };
  const handle = husk._handle;
  husk._handle = null;
  accepted.destroy();
  return new net.Socket({
    handle,
    allowHalfOpen: true,
    readable: true,
    writable: true,
    onread: {
      buffer: READ_BUFFER,
      callback: (n: number) => onChunk(READ_BUFFER.subarray(0, n), false),
    },
  } as net.SocketConstructorOpts);
}

/** `net.connect(options)`, reading into `onChunk`. */
export function connectReading(options: net.TcpNetConnectOpts, onChunk: OnChunk): net.Socket {
  if (READ_PATH === 'portable') return reading(net.connect(options), onChunk);
  return net.connect({
    ...options,
    onread: {
      buffer: READ_BUFFER,
      callback: (n: number) => onChunk(READ_BUFFER.subarray(0, n), false),
    },
  });
}
