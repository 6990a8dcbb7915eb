#!/usr/bin/env node
// The chaos acceptance run: `npm run chaos [-- SECONDS]` (default 120). Prints the page's
// report; exits 1 on any violation, lost acknowledged write or unreadable key.

import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runChaos } from './chaos.mjs';

const seconds = Number(process.argv[2] ?? 120);
const artifacts = fileURLToPath(new URL('../artifacts/', import.meta.url));
mkdirSync(artifacts, { recursive: true });
const t0 = Date.now();
const { report, errors } = await runChaos(seconds, { screenshot: `${artifacts}chaos.png` });
console.log(JSON.stringify({ ...report, wallSeconds: Math.round((Date.now() - t0) / 1000), pageErrors: errors }, null, 2));
const bad = report.violations + report.lost + report.finalReadsFailed + errors.length;
if (bad > 0 || report.ackedWrites === 0) {
  console.error('chaos run FAILED');
  process.exit(1);
}
console.log(`chaos run ok: ${report.ackedWrites} acknowledged writes, ${report.reads} reads, 0 violations, 0 lost`);
