#!/usr/bin/env node
// Static server for the demo: this directory's page files, and the built npm package
// (../wasm/pkg, from scripts/build-npm) under /pkg/. No dependencies.
//
//   node serve.mjs [--port 8080] [--host 127.0.0.1]      (or: npm start)

import { createServer } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
export const pkgDir = normalize(join(here, '..', 'wasm', 'pkg'));

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
};

// Page files that may be served from this directory; everything else is 404.
const PAGE_ROOTS = ['index.html', 'style.css', 'src' + sep];

/** Maps a URL path to a file, or null when it is not ours to serve. */
export function resolvePath(pathname) {
  let rel;
  try {
    rel = decodeURIComponent(pathname);
  } catch {
    return null;
  }
  if (rel.includes('\0')) return null;
  if (rel === '/') rel = '/index.html';
  if (rel.startsWith('/pkg/')) {
    const file = normalize(join(pkgDir, rel.slice(5)));
    return file.startsWith(pkgDir + sep) ? file : null;
  }
  const file = normalize(join(here, rel));
  const inside = file.slice(here.length);
  if (!file.startsWith(here) || !PAGE_ROOTS.some((p) => inside === p || inside.startsWith(p))) return null;
  return file;
}

async function handle(req, res) {
  const { pathname } = new URL(req.url, 'http://localhost');
  const file = req.method === 'GET' || req.method === 'HEAD' ? resolvePath(pathname) : null;
  try {
    if (!file || !(await stat(file)).isFile()) throw new Error('not found');
    const body = await readFile(file);
    res.writeHead(200, {
      'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
      'cache-control': 'no-store',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  } catch {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  }
}

/** Starts the server; port 0 picks a free one. Resolves to { server, url }. */
export async function startServer({ port = 8080, host = '127.0.0.1' } = {}) {
  const server = createServer(handle);
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const shown = host === '0.0.0.0' ? 'localhost' : host;
  return { server, url: `http://${shown}:${server.address().port}/` };
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
