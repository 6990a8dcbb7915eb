// An edge node: a wasm ringkv replica in Node.js with a file-backed store, joined to a
// native cluster through a node's relay, serving HTTP:
//
//   GET    /kv/:key   → 200 with the value's bytes, 404 when absent
//   PUT    /kv/:key   → 204 once the write is acknowledged (body = the value's bytes)
//   DELETE /kv/:key   → 204
//   GET    /status    → the replica's status (JSON)
//
// Errors: 503 UNAVAILABLE (no quorum: nothing changed), 504 INDETERMINATE (may have
// applied), 413 TOO_LARGE, 400 bad input, 409 concurrent eventual values, 500 storage
// failures and anything unexpected; the body names the code.
//
//   node --experimental-websocket server.mjs --seed ws://127.0.0.1:7001 --node-id 101 \
//        --data ./edge-data --port 8080 [--token T] [--zone edge] [--consistency eventual]
//
// Values are stored as raw bytes, so RESP clients of the cluster read what HTTP wrote.

import http from 'node:http';
import { parseArgs } from 'node:util';

const pkg = process.env.RINGKV_PKG ?? 'ringkv';
const { Replica, FileBlockStore } = await import(pkg);
// The /kv/:key interface shared with examples/cloudflare-worker (status codes, limits).
const { serveKv, BODY_BYTES_MAX, BodyTooLargeError } = await import(
  pkg === 'ringkv' ? 'ringkv/http' : new URL('http.js', new URL(pkg, import.meta.url)).href);

const { values: args } = parseArgs({
  options: {
    seed: { type: 'string', multiple: true },
    'node-id': { type: 'string', default: '101' },
    data: { type: 'string', default: './edge-data' },
    port: { type: 'string', default: '8080' },
    host: { type: 'string', default: '127.0.0.1' },
    token: { type: 'string' },
    zone: { type: 'string', default: 'edge' },
    consistency: { type: 'string', default: 'linearizable' },
  },
});
if (!args.seed?.length) {
  console.error('usage: server.mjs --seed ws://HOST:PORT [--seed ...] [--node-id N] [--data DIR] [--port P]');
  process.exit(2);
}

const replica = await Replica.open({
  nodeId: Number(args['node-id']),
  zone: args.zone,
  seeds: args.seed,
  token: args.token,
  storage: new FileBlockStore(args.data),
  consistency: args.consistency,
  valueEncoding: 'raw',
});
replica.on('membership', (e) =>
  console.log(`layout v${e.version}${e.pendingVersion ? ` (changing to v${e.pendingVersion})` : ''}: ` +
    e.members.map((m) => `n${m.id}:${m.state}`).join(' ')));

async function readBody(req) {
  const declared = Number(req.headers['content-length']);
  if (declared > BODY_BYTES_MAX) throw new BodyTooLargeError(BODY_BYTES_MAX);
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > BODY_BYTES_MAX) throw new BodyTooLargeError(BODY_BYTES_MAX);
    chunks.push(chunk);
  }
  return new Uint8Array(Buffer.concat(chunks));
}

const server = http.createServer(async (req, res) => {
  const { status, type, body } = await serveKv(replica, {
    method: req.method,
    path: new URL(req.url, 'http://edge').pathname,
    body: () => readBody(req),
  });
  res.writeHead(status, { 'content-type': type });
  res.end(body);
});

server.listen(Number(args.port), args.host, () => {
  console.log(`edge node n${args['node-id']} serving http://${args.host}:${server.address().port}/kv/:key`);
});

const stop = async () => {
  server.close();
  await replica.close();
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
