#!/usr/bin/env node
// Static server for the demo: this directory's page files, and the built npm package
// (../wasm/pkg, from scripts/build-npm) under /pkg/. No dependencies.
//
//   node serve.mjs [--port 8080] [--host 127.0.0.1]      (or: npm start)

import { stat } from 'node:fs/promises';
import { join, normalize, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

import { fileUnder, startStaticServer } from '../scripts/lib/static-server.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
export const pkgDir = normalize(join(here, '..', 'wasm', 'pkg'));

// Page files that may be served from this directory; everything else is 404.
const PAGE_ROOTS = ['index.html', 'style.css', 'src' + sep];

/** Maps a URL path to a file, or null when it is not ours to serve. */
export function resolvePath(pathname) {
  if (pathname === '/') return join(here, 'index.html');
  if (pathname.startsWith('/pkg/')) return fileUnder(pkgDir, pathname.slice(4));
  const file = fileUnder(here, pathname);
  const inside = file && relative(here, file);
  return file && PAGE_ROOTS.some((p) => inside === p || inside.startsWith(p)) ? file : null;
}

/** Starts the server; port 0 picks a free one. Resolves to { server, url }. */
export function startServer({ port = 8080, host = '127.0.0.1' } = {}) {
  return startStaticServer(resolvePath, { port, host });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === normalize(process.argv[1])) {
  const arg = (name, dflt) => {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 ? process.argv[i + 1] : dflt;
  };
  try {
    await stat(join(pkgDir, 'browser.js'));
  } catch {
    console.error(`note: ${pkgDir} is missing; build the package first: ./scripts/build-npm`);
  }
  const { url } = await startServer({ port: Number(arg('port', process.env.PORT ?? 8080)), host: arg('host', '127.0.0.1') });
  console.log(`ringkv web demo: ${url}  (?fresh=1 wipes the nodes' IndexedDB; Ctrl-C stops)`);
}
