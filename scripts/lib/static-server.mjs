// A dependency-free static file server for the pages that load the npm package (the
// web demo, the browser benchmark, the browser-page checks). Each caller decides which
// files exist through `resolvePath`; nothing else is served.

import { createServer } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import { extname, join, normalize, sep } from 'node:path';

export const CONTENT_TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
};

/**
 * The file under directory `root` that URL path `pathname` (still percent-encoded)
 * names, or null when it does not decode or would leave `root`.
 */
export function fileUnder(root, pathname) {
  let rel;
  try {
    rel = decodeURIComponent(pathname);
  } catch {
    return null;
  }
  if (rel.includes('\0')) return null;
  const base = normalize(root).replace(/[\\/]+$/, '');
  const file = normalize(join(base, rel));
  return file.startsWith(base + sep) ? file : null;
}

/**
 * Serves GET/HEAD of the files `resolvePath(pathname)` names (null: 404; a missing
 * favicon: 204), uncached.
 * Port 0 picks a free one. Resolves to { server, url } (url ends with '/').
 */
export async function startStaticServer(resolvePath, { port = 0, host = '127.0.0.1' } = {}) {
  const server = createServer(async (req, res) => {
    const { pathname } = new URL(req.url, 'http://localhost');
    const file = req.method === 'GET' || req.method === 'HEAD' ? resolvePath(pathname) : null;
    try {
      if (!file || !(await stat(file)).isFile()) throw new Error('not found');
      const body = await readFile(file);
      res.writeHead(200, {
        'content-type': CONTENT_TYPES[extname(file)] ?? 'application/octet-stream',
        'cache-control': 'no-store',
      });
      res.end(req.method === 'HEAD' ? undefined : body);
    } catch {
      // Browsers ask for an icon; none is no error (and keeps page consoles quiet).
      if (pathname === '/favicon.ico') return res.writeHead(204).end();
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const shown = host === '0.0.0.0' ? 'localhost' : host;
  return { server, url: `http://${shown}:${server.address().port}/` };
}
