import net from 'node:net';
import tls from 'node:tls';
import { ROOT_CONTEXT } from '@opentelemetry/api';
import { connect, connectTls, readHeader } from '@picop/net-wrap';
import { setEnvId, withEnvId } from '@picop/propagator';
import { afterAll, describe, expect, it } from 'vitest';
import { SIGNATURE_HEX } from '../../../test/support/header.js';
import {
  EMPTY_HEADER,
  HEADER_FEATURE_1,
  listen,
  once,
  recordingServer,
  selfSignedCert,
  useContextManager,
} from './helpers.js';

useContextManager();
const servers: net.Server[] = [];
afterAll(() => {
  for (const s of servers) s.close();
});

describe('connect()', () => {
  it('sends the active context header before bytes the caller writes in the same tick', async () => {
    const { port, next, server } = await recordingServer(HEADER_FEATURE_1.length + 4);
    servers.push(server);
    const socket = withEnvId('feature-1', () => connect({ host: '127.0.0.1', port }));
    socket.write('PING');
    await once(socket, 'connect');
    expect((await next())?.toString('hex')).toBe(
      Buffer.concat([HEADER_FEATURE_1, Buffer.from('PING')]).toString('hex'),
    );
    socket.destroy();
  });

  it('sends an empty header without context, and the fields or context it is given', async () => {
    const { port, next, server } = await recordingServer(EMPTY_HEADER.length);
    servers.push(server);
    connect({ host: '127.0.0.1', port }).on('error', () => {});
    const explicit = await recordingServer(HEADER_FEATURE_1.length);
    servers.push(explicit.server);
    connect({ host: '127.0.0.1', port: explicit.port, fields: { 'Env-Id': 'feature-1' } });
    const fromCtx = await recordingServer(HEADER_FEATURE_1.length);
    servers.push(fromCtx.server);
    connect({
      host: '127.0.0.1',
      port: fromCtx.port,
      context: setEnvId(ROOT_CONTEXT, 'feature-1'),
    });
    expect((await next())?.equals(EMPTY_HEADER)).toBe(true);
    expect((await explicit.next())?.equals(HEADER_FEATURE_1)).toBe(true);
    expect((await fromCtx.next())?.equals(HEADER_FEATURE_1)).toBe(true);
  });

  it('sends the Go reference empty header in the picop-go dialect when there is no context', async () => {
    const { port, next, server } = await recordingServer(18);
    servers.push(server);
    const socket = connect({ host: '127.0.0.1', port, dialect: 'picop-go' });
    socket.write('PING');
    expect((await next())?.toString('hex')).toBe(
      `${SIGNATURE_HEX}0100${Buffer.from('PING').toString('hex')}`,
    );
  });

  it('turns no-delay on', async () => {
    const { port, server } = await recordingServer(100);
    servers.push(server);
    const socket = connect({ host: '127.0.0.1', port });
    await once(socket, 'connect');
    // Node does not expose TCP_NODELAY; the socket's own flag records setNoDelay(true).
    const flagged = Object.getOwnPropertySymbols(socket).some(
      (s) =>
        s.description === 'kSetNoDelay' &&
        (socket as unknown as Record<symbol, unknown>)[s] === true,
    );
    expect(flagged).toBe(true);
    socket.destroy();
  });

  it('throws a PicopError for invalid fields before opening anything', () => {
    expect(() => connect({ host: '127.0.0.1', port: 1, fields: { 'Env-Id': 'a\r\nX:1' } })).toThrow(
      expect.objectContaining({ code: 'ERR_PICOP_SYNTAX' }),
    );
  });

  it('reports connect errors as the socket error, unchanged', async () => {
    const probe = net.createServer();
    const port = await listen(probe);
    await new Promise((r) => probe.close(r));
    const err = await once<NodeJS.ErrnoException>(connect({ host: '127.0.0.1', port }), 'error');
    expect(err.code).toBe('ECONNREFUSED');
    const tlsErr = await once<NodeJS.ErrnoException>(
      connectTls({ host: '127.0.0.1', port }),
      'error',
    );
    expect(tlsErr.code).toBe('ECONNREFUSED');
  });
});

describe('connectTls()', () => {
  const { key, cert } = selfSignedCert();

  it('sends the header in clear, then runs TLS over the same socket', async () => {
    let headerSeen: string | undefined;
    const server = net.createServer(async (socket) => {
      headerSeen = (await readHeader(socket))?.get('env-id');
      const secure = new tls.TLSSocket(socket, { isServer: true, key, cert });
      secure.on('data', (d) => secure.end(`echo:${d}`));
    });
    servers.push(server);
    const port = await listen(server);
    const socket = withEnvId('feature-1', () =>
      connectTls({ host: '127.0.0.1', port, ca: cert, servername: 'localhost' }),
    );
    socket.write('hello'); // written before the handshake: TLS queues it
    let reply = '';
    socket.on('data', (d) => (reply += d));
    await once(socket, 'end');
    expect(socket.authorized).toBe(true);
    expect(headerSeen).toBe('feature-1');
    expect(reply).toBe('echo:hello');
  });

  it('puts the raw header bytes first on the wire', async () => {
    const { port, next, server } = await recordingServer(HEADER_FEATURE_1.length + 1);
    servers.push(server);
    const socket = withEnvId('feature-1', () => connectTls({ host: '127.0.0.1', port, ca: cert }));
    socket.on('error', () => {});
    const first = (await next()) as Buffer;
    expect(first.subarray(0, HEADER_FEATURE_1.length).equals(HEADER_FEATURE_1)).toBe(true);
    expect(first[HEADER_FEATURE_1.length]).toBe(0x16); // TLS handshake record
  });
});
