// A short chaos run in the page (the acceptance run is `npm run chaos`, 2 minutes): under
// kills, partitions, cut links, loss and latency the in-page checker finds no violation
// and every acknowledged write survives.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runChaos } from './chaos.mjs';

const SECONDS = Number(process.env.CHAOS_SECONDS ?? 20);

test(`chaos for ${SECONDS} s: no violations, no lost acknowledged writes`, { timeout: (SECONDS + 240) * 1000 }, async () => {
  const { report, errors } = await runChaos(SECONDS);
  console.log(`chaos report: ${JSON.stringify(report)}`);
  assert.ok(report.ackedWrites > 0, 'no write was acknowledged');
  assert.ok(report.reads > 0, 'no read succeeded');
  assert.ok(report.faults > 0, 'no fault was injected');
  assert.ok(report.checkedOps > report.ackedWrites, 'the checker saw the history');
  assert.deepEqual(report.violationsFound, []);
  assert.equal(report.violations, 0);
  assert.equal(report.lost, 0);
  assert.equal(report.finalReadsFailed, 0);
  assert.deepEqual(errors, []);
});
