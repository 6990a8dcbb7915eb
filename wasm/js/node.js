// Node.js entry: the `--target nodejs` bindings (CommonJS, loaded synchronously).
import { createRequire } from 'node:module';
import { makeApi } from './api.js';

export * from './errors.js';

const bindings = createRequire(import.meta.url)('./node/ringkv_wasm.js');

export const initWasm = async () => {};
export const { Replica, Client, encodeValue, decodeValue, frameKind, describeContext } = makeApi(bindings, async () => {});
export { FileBlockStore } from './file-store.js';
