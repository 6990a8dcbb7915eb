// Runs the page's chaos mode for `seconds` in headless Chromium and returns its report
// (the page heals, restarts killed nodes and reads every key when it stops).

import { openDemo } from './browser.mjs';

export async function runChaos(seconds, { screenshot } = {}) {
  const browser = await openDemo();
  try {
    await browser.page.goto(`${browser.url}?fresh=1&chaos=${seconds}`);
    await browser.page.waitForSelector('#chaos-report[data-phase="done"]', { timeout: (seconds + 180) * 1000 });
    const report = JSON.parse(await browser.page.getAttribute('#chaos-report', 'data-report'));
    if (screenshot) await browser.page.screenshot({ path: screenshot });
    return { report, errors: browser.errors };
  } finally {
    await browser.close();
  }
}
