#!/usr/bin/env node
// Browser benchmark of the ringkv npm package: puts/s and gets/s of an IndexedDB-backed
// standalone replica vs raw IndexedDB (one transaction per put, as idb-keyval does; and
// batched), in headless Chromium driven by playwright-core (/usr/bin/chromium; never
// downloads a browser). Also prints the .wasm size, raw and gzip -9.
//
//   ./scripts/build-npm && (cd wasm/bench && npm ci) && node wasm/bench/run.js [--json]
//       [--puts N] [--gets N] [--window N] [--batch N]

import { readFile, stat } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { chromium } from 'playwright-core';

import { fileUnder, startStaticServer } from '../../scripts/lib/static-server.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
const pkgDir = join(here, '..', 'pkg');

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const params = { puts: opt('puts', 2000), gets: opt('gets', 2000), window: opt('window', 64), batch: opt('batch', 100) };
const json = args.includes('--json');

// Serves wasm/pkg under /pkg/ and this directory's page (index.html, page.js); nothing else.
const { server, url } = await startStaticServer((pathname) => {
  if (pathname.startsWith('/pkg/')) return fileUnder(pkgDir, pathname.slice(4));
  if (pathname === '/' || pathname === '/page.js') return join(here, pathname === '/' ? 'index.html' : 'page.js');
  return null;
});
const origin = url.replace(/\/$/, '');

const wasmPath = join(pkgDir, 'web', 'ringkv_wasm_bg.wasm');
const wasmBytes = await readFile(wasmPath);
const sizes = { wasmBytes: (await stat(wasmPath)).size, wasmGzipBytes: gzipSync(wasmBytes, { level: 9 }).length };

const profile = mkdtempSync(join(tmpdir(), 'ringkv-bench-chromium-'));
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run'],
});
let out;
try {
  const page = browser.pages()[0] ?? (await browser.newPage());
  await page.goto(origin);
  out = await page.evaluate(async (p) => (await import('/page.js')).run(p), params);
  out.browser = browser.browser()?.version() ?? 'chromium';
} finally {
  await browser.close();
  server.close();
  rmSync(profile, { recursive: true, force: true });
}
out.sizes = sizes;
const r = out.results;
const get = (prefix) => Object.entries(r).find(([k]) => k.startsWith(prefix))?.[1].perSecond;
out.ratios = {
  replicaConcurrentVsRawPerPutConcurrent: get('replica put (') && +(get(`replica put (${params.window}`) / get(`raw IndexedDB put, 1 tx/put (${params.window}`)).toFixed(2),
  replicaConcurrentVsRawPerPutSequential: +(get(`replica put (${params.window}`) / get('raw IndexedDB put, 1 tx/put (sequential)')).toFixed(2),
  replicaSequentialVsRawPerPutSequential: +(get('replica put (sequential)') / get('raw IndexedDB put, 1 tx/put (sequential)')).toFixed(2),
  replicaConcurrentVsRawBatched: +(get(`replica put (${params.window}`) / get(`raw IndexedDB put, ${params.batch} puts/tx`)).toFixed(2),
  replicaGetVsRawGet: +(get('replica get') / get('raw IndexedDB get')).toFixed(2),
};

if (json) {
  console.log(JSON.stringify(out, null, 2));
} else {
  console.log(`headless Chromium ${out.browser}; ${params.puts} puts, ${params.gets} gets, values ~170 B, durability strict`);
  for (const [name, v] of Object.entries(r)) console.log(`  ${name.padEnd(46)} ${String(v.perSecond).padStart(8)} ops/s  (${v.ms} ms)`);
  console.log('ratios:');
  for (const [k, v] of Object.entries(out.ratios)) console.log(`  ${k.padEnd(46)} ${v}x`);
  console.log(`wasm: ${sizes.wasmBytes} B (${(sizes.wasmBytes / 1024).toFixed(0)} KiB) raw, ${sizes.wasmGzipBytes} B (${(sizes.wasmGzipBytes / 1024).toFixed(0)} KiB) gzip -9`);
  console.log(`replica: ${out.replicaStatus.host.commits} IndexedDB commits, ${out.replicaStatus.engine.flushes} flushes, ${out.replicaStatus.engine.compactions} compactions`);
}
