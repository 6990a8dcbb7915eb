#!/usr/bin/env node
// The package as a newcomer uses it in a browser, in headless Chromium (Debian's
// /usr/bin/chromium through playwright-core; no browser download):
//
// 1. index.html (the README's example) from a directory where the packed tarball was
//    `npm install`ed: an IndexedDB replica puts and gets, and after a reload reads what
//    the first visit wrote.
// 2. opfs.html: storage 'opfs' in a dedicated worker; acknowledged writes survive
//    killing the worker mid-stream, twice, with enough data to compact the journal.
// 3. relay.html: a browser replica joins a 1-node native cluster (a real `ringkv serve`)
//    through its relay; RESP on the native node reads what the page wrote and the page
//    reads what RESP wrote.
//
//   node check.mjs APP_DIR RINGKV_BIN     (scripts/test runs it)

import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

import { NativeCluster, resp } from '../../../scripts/lib/native-cluster.mjs';
import { fileUnder, startStaticServer } from '../../../scripts/lib/static-server.mjs';

const [appDir, bin] = process.argv.slice(2);
if (!appDir || !bin) {
  console.error('usage: check.mjs APP_DIR RINGKV_BIN');
  process.exit(2);
}
const here = fileURLToPath(new URL('.', import.meta.url));
for (const page of ['index.html', 'relay.html', 'opfs.html', 'opfs-worker.js']) await copyFile(join(here, page), join(appDir, page));

// The app directory (the tarball's install plus these pages); favicon requests 404.
const { server, url } = await startStaticServer((pathname) => fileUnder(appDir, pathname));
const origin = url.replace(/\/$/, '');

async function outcome(page) {
  await page.waitForFunction(() => !document.getElementById('out').textContent.startsWith('running'), null, { timeout: 60000 });
  return page.textContent('#out');
}

const failures = [];
const expect = (what, ok, detail) => {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}${ok ? '' : `: ${detail}`}`);
  if (!ok) failures.push(what);
};

const profile = await mkdtemp(join(tmpdir(), 'ringkv-chromium-'));
process.env.RINGKV_BIN = bin;
const cluster = new NativeCluster();
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox'],
});
try {
  const page = await browser.newPage();
  page.on('console', (m) => m.type() === 'error' && console.error(`[page] ${m.text()}`));
  await page.goto(`${origin}/index.html`);
  let text = await outcome(page);
  expect('README example: put/get in an IndexedDB replica', text === 'ok {"text":"hello","visits":1}', text);
  await page.reload();
  text = await outcome(page);
  expect('README example: the data survives a reload', text === 'ok {"text":"hello","visits":2}', text);

  await page.goto(`${origin}/opfs.html`);
  text = await outcome(page);
  expect("storage 'opfs' in a worker: acknowledged writes survive worker kills", text.startsWith('ok '), text);
  console.log(`     ${text}`);

  await cluster.start(1);
  const ports = cluster.node(1);
  const set = await resp(ports.resp, 'SET', 'from-native', 'written by RESP');
  expect('RESP on the native node', set === 'OK', set);
  await page.goto(`${origin}/relay.html?seed=ws://127.0.0.1:${ports.ws}&id=100`);
  text = await outcome(page);
  const expected = { native: 'written by RESP', role: 'member', members: 2, host: 1 };
  expect('a browser replica joins a native cluster through the relay', text === `ok ${JSON.stringify(expected)}`, text);
  const fromBrowser = await resp(ports.resp, 'GET', 'from-browser');
  expect('RESP reads what the browser replica wrote', fromBrowser === 'written in chromium', fromBrowser);
} finally {
  await cluster.stop();
  await browser.close();
  server.close();
  await rm(profile, { recursive: true, force: true });
}
if (failures.length) {
  console.error(`browser check: ${failures.length} failed`);
  process.exit(1);
}
console.log('browser check: all passed');
