// The naive proxy the issue measures against: accept, connect to the target, pipe() both ways.
// No header, no routing: `node bench/naive-relay.mjs <target port>`; prints "listening on 127.0.0.1:<port>".
import net from 'node:net';

const target = Number(process.argv[2]);
const server = net.createServer({ noDelay: true }, (client) => {
  const destination = net.connect({ host: '127.0.0.1', port: target, noDelay: true });
  client.pipe(destination).pipe(client);
  client.on('error', () => destination.destroy());
  destination.on('error', () => client.destroy());
});
server.listen(0, '127.0.0.1', () => console.log(`listening on 127.0.0.1:${server.address().port}`));
