// End-to-end test of the demo page in headless Chromium: five real wasm replicas in
// workers, each on its own IndexedDB database. Drives the page like a user (the DOM
// only) through kills, a partition, a heal and a reload. Screenshots go to artifacts/.
//
//   npm test            (after ./scripts/build-npm at the repository root)

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { openDemo } from './browser.mjs';
import { Demo } from './page-driver.mjs';

const artifacts = fileURLToPath(new URL('../artifacts/', import.meta.url));
mkdirSync(artifacts, { recursive: true });

test('the demo cluster survives kills, a partition and a reload', { timeout: 300_000 }, async (t) => {
  const browser = await openDemo();
  t.after(() => browser.close());
  const demo = new Demo(browser.page);
  const KEY = 'e2e-key';
  let pref;

  await t.test('loads with five replicas that see each other alive', async () => {
    await browser.page.goto(`${browser.url}?fresh=1`);
    await demo.waitHealthy();
    assert.equal(await demo.nodeCount(), 5);
  });

  await t.test('put a key and read its preference list: 3 replicas of 5 nodes', async () => {
    const put = await demo.op('put', KEY, 'v1', 1);
    assert.equal(put.status, 'ok', put.text);
    pref = await demo.preferenceList(KEY);
    assert.equal(pref.length, 3);
    assert.equal(new Set(pref).size, 3);
    for (const id of pref) assert.ok(id >= 1 && id <= 5, `node ${id}`);
    const got = await demo.op('get', KEY, null, pref[0]);
    assert.match(got.text, /get ok: "v1"/);
    await browser.page.locator('.ring-panel').screenshot({ path: `${artifacts}ring.png` });
  });

  const outside = () => [1, 2, 3, 4, 5].filter((id) => !pref.includes(id));

  await t.test('kill a replica and a node outside the list: a linearizable read still works', async () => {
    const [o1, o2] = outside();
    await demo.kill(pref[0]);
    await demo.kill(o1);
    const got = await demo.op('get', KEY, null, o2);
    assert.equal(got.status, 'ok', got.text);
    assert.match(got.text, /get ok: "v1"/);
  });

  await t.test('kill a second replica: the read is refused with UNAVAILABLE', async () => {
    await demo.kill(pref[1]);
    const got = await demo.op('get', KEY, null, outside()[1]);
    assert.equal(got.status, 'UNAVAILABLE', got.text);
    assert.match(got.text, /^UNAVAILABLE/);
  });

  await t.test('restart them: every node is alive again', async () => {
    for (const id of [pref[0], pref[1], outside()[0]]) await demo.restart(id);
    await demo.waitHealthy();
  });

  await t.test('partition 2 replicas | 1 replica: only the majority side accepts a linearizable put', async () => {
    const [o1, o2] = outside();
    await demo.partition([pref[2], o2]); // side B; the rest (pref[0], pref[1], o1) stay on A
    const minority = await demo.op('put', KEY, 'v2', o2);
    assert.equal(minority.status, 'UNAVAILABLE', minority.text);
    assert.match(minority.text, /^UNAVAILABLE/);
    const majority = await demo.op('put', KEY, 'v3', o1);
    assert.equal(majority.status, 'ok', majority.text);
    // The replica on the minority side missed the write: its range's root differs.
    await browser.page.waitForSelector('#sync-status[data-in-sync="false"]', { timeout: 10_000 });
    await browser.page.screenshot({ path: `${artifacts}partition.png` });
  });

  await t.test('heal: anti-entropy brings every Merkle root into agreement', async () => {
    await demo.heal();
    await demo.waitInSync(90_000);
    const got = await demo.op('get', KEY, null, pref[2]);
    assert.match(got.text, /get ok: "v3"/);
  });

  await t.test('eventual mode: two blind puts are siblings; writing back with the context resolves them', async () => {
    assert.equal((await demo.op('put', 'cart', 'apples', 2, 'eventual')).status, 'ok');
    assert.equal((await demo.op('put', 'cart', 'pears', 4, 'eventual')).status, 'ok');
    const both = await demo.op('get', 'cart', null, 5, 'eventual');
    assert.match(both.text, /get ok: 2 siblings/);
    const detail = await browser.page.textContent('#op-detail');
    assert.match(detail, /"apples"/);
    assert.match(detail, /"pears"/);
    assert.match(detail, /version vector: \{"\d+":\d+/);
    assert.equal((await demo.op('put', 'cart', 'apples and pears', 5, 'eventual')).status, 'ok');
    assert.match((await demo.op('get', 'cart', null, 3, 'eventual')).text, /get ok: "apples and pears"/);
  });

  await t.test('reload the page: the replicas reopen their IndexedDB databases and still hold the key', async () => {
    await browser.page.goto(browser.url);
    await demo.waitHealthy();
    const got = await demo.op('get', KEY, null, pref[1]);
    assert.match(got.text, /get ok: "v3"/);
    const keys = await demo.keyCounts();
    for (const id of pref) assert.ok(keys[id] >= 1, `node ${id} holds ${keys[id]} keys`);
  });

  await t.test('add a node: ranges stream to it; remove it: the data stays readable', async () => {
    for (let i = 0; i < 12; i++) assert.equal((await demo.op('put', `grow-${i}`, `g${i}`, 1 + (i % 5))).status, 'ok');
    await demo.addNode(6);
    await browser.page.waitForFunction(() => {
      const card = document.querySelector('.node-card[data-node="6"]');
      return card && Number(card.dataset.keys) > 0 && /member · layout v2 /.test(card.querySelector('.facts').textContent);
    }, null, { timeout: 60_000 });
    await demo.waitInSync(60_000);
    await demo.removeNode(6);
    await demo.waitHealthy();
    for (let i = 0; i < 12; i++) assert.match((await demo.op('get', `grow-${i}`, null, 1 + ((i + 2) % 5))).text, new RegExp(`get ok: "g${i}"`));
  });

  await t.test('fits a phone-sized screen without horizontal scrolling', async () => {
    await browser.page.setViewportSize({ width: 390, height: 844 });
    await browser.page.waitForTimeout(300);
    const overflow = await browser.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `page is ${overflow}px wider than the screen`);
    await browser.page.screenshot({ path: `${artifacts}phone.png` });
  });

  await t.test('no errors in the page', () => {
    assert.deepEqual(browser.errors, []);
  });
});
