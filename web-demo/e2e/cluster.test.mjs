// End-to-end test of the demo's cluster mode in headless Chromium: a real 3-node native
// cluster (`ringkv serve` processes), the page opened with ?cluster=ws://... so its five
// replicas (101..105, one worker and IndexedDB database each) join it through n1's
// relay. One ring of 8: a value put through a browser replica reads back with RESP on a
// native node and the other way round (raw bytes both ways); with a browser replica
// killed a linearizable read still succeeds, and the restarted replica re-attaches to
// its native host and serves again. Screenshot: artifacts/cluster-mode.png.
//
// Needs the ringkv binary: $RINGKV_BIN, else $CARGO_TARGET_DIR/proc-test/ringkv, else
// target/proc-test/ringkv (cargo build -p ringkv --profile proc-test). A missing binary
// fails the test.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { openDemo } from './browser.mjs';
import { Demo } from './page-driver.mjs';
import { NativeCluster, ringkvBin } from '../../scripts/lib/native-cluster.mjs';

const artifacts = fileURLToPath(new URL('../artifacts/', import.meta.url));
mkdirSync(artifacts, { recursive: true });

const PAGE_IDS = [101, 102, 103, 104, 105];
const NATIVE_IDS = [1, 2, 3];

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// A step that makes no progress for this long fails, naming what stalled. Deadlines
// follow progress (each join), not the whole run.
const STALL_MS = 20_000;

/**
 * Follows the page's joins on n1's status document: layout v1 (the 3 natives) gains one
 * committed version per join. Fails naming the join that made no progress (no newer
 * version chosen or committed, no more members synced) for STALL_MS. Returns the whole
 * time and each join's.
 */
async function watchJoins(cluster, count) {
  const t0 = Date.now();
  const each = [];
  let joinStart = t0;
  let lastProgress = t0;
  let seen = '';
  for (;;) {
    const s = await cluster.status(1).catch(() => null);
    const m = s?.membership;
    if (m) {
      const committed = m.committed_version;
      const mark = `${committed}/${m.pending_version}/${m.synced.length}`;
      if (mark !== seen) {
        seen = mark;
        lastProgress = Date.now();
      }
      while (each.length < Math.min(committed - 1, count)) {
        each.push(Date.now() - joinStart);
        joinStart = Date.now();
      }
      if (each.length === count) return { totalMs: Date.now() - t0, each };
    }
    if (Date.now() - lastProgress > STALL_MS) {
      const m2 = s?.membership;
      assert.fail(`join ${each.length + 1} of ${count} (layout v${each.length + 2}) made no progress for ${STALL_MS / 1000} s ` +
        `after ${((Date.now() - t0) / 1000).toFixed(1)} s: n1 has committed v${m2?.committed_version}, pending ${m2?.pending_version ?? 'none'} ` +
        `(joining ${JSON.stringify(m2?.joining)}, synced ${JSON.stringify(m2?.synced)})`);
    }
    await sleep(100);
  }
}

// Retries `attempt` while it fails with one of `codes` (the cluster is still settling
// after five joins: a quorum may be briefly unreachable), up to `limitMs`.
async function retrying(what, attempt, { limitMs = 30_000, ok = (r) => r.ok } = {}) {
  const start = Date.now();
  let last;
  for (;;) {
    last = await attempt();
    if (ok(last)) return last;
    if (Date.now() - start > limitMs) assert.fail(`${what}: still failing after ${limitMs} ms: ${JSON.stringify(last)}`);
    await sleep(500);
  }
}

test('cluster mode: browser replicas and native nodes share one ring', { timeout: 240_000 }, async (t) => {
  const t0 = Date.now();
  const cluster = new NativeCluster();
  const steps = { run: 0, passed: 0 };
  t.after(async () => {
    // On a failure, the native nodes' logs help (the page's own log is in the screenshot).
    if (steps.passed < steps.run) console.log(`native node logs:\n${await cluster.logs()}`);
    await cluster.stop();
  });
  // Each step counts itself passed only if it returns.
  const step = (name, fn) => t.test(name, async () => {
    steps.run++;
    await fn();
    steps.passed++;
  });
  await cluster.start(3);
  const browser = await openDemo();
  t.after(() => browser.close());
  const { page } = browser;
  const demo = new Demo(page);
  // Later steps need the ring formed; after a failed first step they fail at once.
  let formed = false;
  const needRing = () => assert.ok(formed, 'the ring did not form (first step)');
  const resp = async (node, ...args) => {
    try {
      return await cluster.resp(node, ...args);
    } catch (e) {
      return e;
    }
  };

  await step('the five replicas join one at a time: 8 ring members, 3 of them native', async () => {
    await page.goto(`${browser.url}?cluster=${cluster.url(1)}&fresh=1`);
    const joins = await watchJoins(cluster, PAGE_IDS.length);
    console.log(`five relay joins: ${(joins.totalMs / 1000).toFixed(1)} s (${joins.each.map((ms) => `${(ms / 1000).toFixed(1)} s`).join(', ')}; RINGKV_BIN=${ringkvBin()})`);
    await page.waitForSelector('body[data-ready="true"]', { timeout: STALL_MS });
    await page.waitForSelector('#health[data-members="8"][data-native="3"]', { timeout: STALL_MS });
    // Every page replica a member of the same committed layout (5 joins after v1).
    await page.waitForSelector('#health[data-layout="6"]', { timeout: STALL_MS });
    for (const id of NATIVE_IDS) {
      const s = await cluster.status(id);
      assert.deepEqual(s.members.map((m) => m.id).sort((a, b) => a - b), [...NATIVE_IDS, ...PAGE_IDS], `n${id}'s members`);
      assert.deepEqual(s.members.filter((m) => PAGE_IDS.includes(m.id)).map((m) => m.address), PAGE_IDS.map(() => 'relay:1'));
    }
    const cards = await page.$$eval('.node-card', (els) => els.map((c) => ({
      id: Number(c.dataset.node), kind: c.dataset.kind ?? 'page', process: c.dataset.process ?? null,
      kill: Boolean(c.querySelector('button[data-action="kill"]')),
    })));
    assert.deepEqual(cards.map((c) => c.id), [...NATIVE_IDS, ...PAGE_IDS]);
    for (const c of cards) {
      assert.equal(c.kind, NATIVE_IDS.includes(c.id) ? 'native' : 'page', `card ${c.id}`);
      assert.equal(c.kill, !NATIVE_IDS.includes(c.id), `card ${c.id} has a kill button only if it is the page's`);
      if (c.kind === 'page') assert.equal(c.process, 'running', `card ${c.id}`);
    }
    // Native nodes are squares labelled n1..n3 in the ring; the page's nodes circles.
    const markers = await page.$$eval('#ring g.node', (els) => els.map((g) => ({
      id: Number(g.dataset.node), kind: g.dataset.kind, shape: g.querySelector('.node-disc').tagName, label: g.querySelector('.node-label').textContent,
    })));
    assert.deepEqual(markers.filter((m) => m.kind === 'native').map((m) => [m.shape, m.label]), [['rect', 'n1'], ['rect', 'n2'], ['rect', 'n3']]);
    assert.deepEqual(markers.filter((m) => m.kind === 'page').map((m) => [m.shape, m.label]), PAGE_IDS.map((id) => ['circle', String(id)]));
    // The simulated network's controls do not apply.
    assert.equal(await page.isDisabled('#partition'), true);
    assert.equal(await page.isDisabled('#loss'), true);
    assert.equal(await page.getAttribute('#net-status', 'data-disabled'), 'true');
    // A native node's card shows what its status document says.
    await page.waitForFunction(() => /member · layout v6/.test(document.querySelector('.node-card[data-node="2"] .facts').textContent), null, { timeout: 15_000 });
    formed = true;
    console.log(`joined and settled after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  });

  await step('a put through a browser replica reads back with RESP GET on native nodes', async () => {
    needRing();
    const put = await retrying('put via 101', async () => {
      const r = await demo.op('put', 'from-browser', 'written in chromium', 101);
      return { ...r, ok: r.status === 'ok' };
    });
    assert.match(put.text, /^put ok/);
    for (const node of [2, 3]) {
      const got = await retrying(`RESP GET on n${node}`, async () => ({ reply: String(await resp(node, 'GET', 'from-browser')) }),
        { ok: (r) => !r.reply.startsWith('Error') });
      assert.equal(got.reply, 'written in chromium');
    }
  });

  await step('a RESP SET on a native node reads back in the page', async () => {
    needRing();
    await retrying('RESP SET on n3', async () => ({ reply: String(await resp(3, 'SET', 'from-resp', 'written by RESP')) }),
      { ok: (r) => r.reply === 'OK' });
    for (const node of [102, 104]) {
      const got = await retrying(`get via ${node}`, async () => {
        const r = await demo.op('get', 'from-resp', null, node);
        return { ...r, ok: r.status === 'ok' };
      });
      assert.equal(got.text.replace(/ \(.*$/, ''), 'get ok: "written by RESP"');
    }
  });

  // A key one of the page's replicas holds: killing that replica takes a copy away.
  let key;
  let victim;
  await step('kill a browser replica holding the key: a linearizable read still succeeds', async () => {
    needRing();
    for (let i = 0; !victim; i++) {
      key = `kill-${i}`;
      const pref = await demo.preferenceList(key);
      victim = pref.find((id) => PAGE_IDS.includes(id) && id !== 101);
    }
    await retrying(`put ${key}`, async () => {
      const r = await demo.op('put', key, 'survives a kill', 101);
      return { ...r, ok: r.status === 'ok' };
    });
    await demo.kill(victim);
    const coordinator = PAGE_IDS.find((id) => id !== victim && id !== 101);
    const got = await retrying(`get ${key} via ${coordinator}`, async () => {
      const r = await demo.op('get', key, null, coordinator);
      return { ...r, ok: r.status === 'ok' };
    });
    assert.equal(got.text.replace(/ \(.*$/, ''), 'get ok: "survives a kill"');
    assert.equal(await resp(2, 'GET', key), 'survives a kill');
  });

  await step('restart it: it reopens its database, re-attaches to n1 and serves the key', async () => {
    assert.ok(victim, 'no replica was killed (earlier step)');
    await demo.restart(victim);
    await page.waitForFunction((id) => /relayed by n1/.test(document.querySelector(`.node-card[data-node="${id}"] .facts`)?.textContent ?? ''),
      victim, { timeout: 30_000 });
    const got = await retrying(`get ${key} via ${victim}`, async () => {
      const r = await demo.op('get', key, null, victim);
      return { ...r, ok: r.status === 'ok' };
    });
    assert.equal(got.text.replace(/ \(.*$/, ''), 'get ok: "survives a kill"');
    await page.screenshot({ path: `${artifacts}cluster-mode.png`, fullPage: true });
  });

  await step('fits a phone-sized screen without horizontal scrolling', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForTimeout(300);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `page is ${overflow}px wider than the screen`);
  });

  await step('no errors in the page', () => {
    assert.deepEqual(browser.errors, []);
    console.log(`cluster-mode test: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  });
});
