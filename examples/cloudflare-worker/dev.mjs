// Builds the Worker (build.mjs) and serves it with workerd until interrupted:
//
//   node dev.mjs --seed ws://127.0.0.1:7001 [--port 8787] [--data DIR] [--node-id N] [--token T]
//
// The Durable Object's storage lives in --data (default .workerd-data/): restarting with
// the same directory brings the replica back as the same member, with its data.

import { buildWorker, describeSizes, parseBuildArgs } from './build.mjs';
import { startWorkerd } from './workerd.mjs';

const options = parseBuildArgs(process.argv.slice(2));
if (!options.seeds.length) {
  console.error('usage: node dev.mjs --seed ws://HOST:PORT [--seed ...] [--port 8787] [--data DIR] [--node-id N] [--token T]');
  process.exit(2);
}
const built = await buildWorker(options);
console.log(`built ${built.out}: ${describeSizes(built.sizes)}`);
console.log(`Durable Object storage in ${built.data}`);
const child = startWorkerd(built.config);
console.log(`workerd (pid ${child.pid}) serving http://${options.host}:${options.port}/kv/:key`);
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
