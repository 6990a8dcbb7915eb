// Drives the demo page through its DOM the way a user would (select a coordinator,
// type, click) and reads what the page shows. Used by the browser tests.

export class Demo {
  constructor(page) {
    this.page = page;
  }

  async waitHealthy(timeout = 60_000) {
    await this.page.waitForSelector('body[data-ready="true"]', { timeout });
    await this.page.waitForSelector('#health[data-all-alive="true"]', { timeout });
  }

  async waitInSync(timeout = 60_000) {
    await this.page.waitForSelector('#sync-status[data-in-sync="true"]', { timeout });
  }

  nodeCount() {
    return this.page.locator('.node-card').count();
  }

  /** Runs put/get/delete through coordinator `node`; returns { status, text }. */
  async op(kind, key, value, node, consistency = 'linearizable') {
    const p = this.page;
    await p.selectOption('#coordinator', String(node));
    await p.selectOption('#op-consistency', consistency);
    await p.fill('#op-key', key);
    if (value !== null) await p.fill('#op-value', value);
    await p.click(`#op-${kind}`);
    await p.waitForFunction(() => document.querySelector('#op-result').dataset.status !== 'pending', null, { timeout: 30_000 });
    return p.$eval('#op-result', (el) => ({ status: el.dataset.status, text: el.textContent }));
  }

  /** The preference list the page shows for `key` (typed into the key field). */
  async preferenceList(key) {
    await this.page.fill('#op-key', key);
    const handle = await this.page.waitForFunction(
      (k) => {
        const el = document.querySelector('#pref-list');
        return el.dataset.key === k && el.dataset.nodes ? el.dataset.nodes : null;
      },
      key,
      { timeout: 10_000 },
    );
    return (await handle.jsonValue()).split(',').map(Number);
  }

  async #nodeAction(id, action, state) {
    await this.page.click(`.node-card[data-node="${id}"] button[data-action="${action}"]`);
    await this.page.waitForSelector(`.node-card[data-node="${id}"][data-process="${state}"]`, { timeout: 30_000 });
  }

  kill(id) {
    return this.#nodeAction(id, 'kill', 'killed');
  }

  restart(id) {
    return this.#nodeAction(id, 'restart', 'running');
  }

  /** Moves `sideB` to side B (everyone else stays on A) and partitions. */
  async partition(sideB) {
    for (const id of sideB) {
      const side = await this.page.getAttribute(`.side-toggle[data-node="${id}"]`, 'data-side');
      if (side !== 'B') await this.page.click(`.side-toggle[data-node="${id}"]`);
    }
    await this.page.click('#partition');
    await this.page.waitForSelector('#net-status[data-partitioned="true"]');
  }

  async heal() {
    await this.page.click('#heal');
    await this.page.waitForSelector('#net-status[data-partitioned="false"]');
  }

  /** Clicks "Add node" and waits for node `id` to open (it then joins the ring). */
  async addNode(id) {
    await this.page.click('#add-node');
    await this.page.waitForSelector(`.node-card[data-node="${id}"][data-process="running"]`, { timeout: 30_000 });
  }

  /** Clicks a node's Remove and waits until its card is gone (it left the ring). */
  async removeNode(id) {
    await this.page.click(`.node-card[data-node="${id}"] button[data-action="remove"]`);
    await this.page.waitForSelector(`.node-card[data-node="${id}"]`, { state: 'detached', timeout: 150_000 });
  }

  /** { nodeId: live keys it holds } as the node cards show. */
  keyCounts() {
    return this.page.$$eval('.node-card', (cards) =>
      Object.fromEntries(cards.map((c) => [c.dataset.node, Number(c.dataset.keys)])));
  }
}
