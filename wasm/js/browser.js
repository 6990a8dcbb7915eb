// Browser / worker / bundler entry: the `--target web` bindings, loaded on first open.
import init, * as bindings from './web/ringkv_wasm.js';
import { makeApi } from './api.js';
import { OpfsBlockStore } from './opfs-store.js';

export * from './errors.js';

let loading;
const ready = () => (loading ??= init({ module_or_path: new URL('./web/ringkv_wasm_bg.wasm', import.meta.url) }));

/** Loads the .wasm from a custom URL or bytes (e.g. when a bundler moves it). Optional. */
export const initWasm = (moduleOrPath) => (loading ??= init({ module_or_path: moduleOrPath }));

export const { Replica, Client, encodeValue, decodeValue, frameKind, describeContext } = makeApi(bindings, ready, {
  opfs: (name) => new OpfsBlockStore(name),
});
export { OpfsBlockStore };
