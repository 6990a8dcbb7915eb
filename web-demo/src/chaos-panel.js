// The chaos panel: a toggle and the running counts (acknowledged writes, reads,
// failures, violations, lost writes); the final report as JSON in data-report.

import { $ } from './dom.js';

export class ChaosPanel {
  constructor(root, chaos, { onToggle }) {
    this.chaos = chaos;
    this.button = $('#chaos-toggle', root);
    this.counts = $('#chaos-counts', root);
    this.reportEl = $('#chaos-report', root);
    this.button.addEventListener('click', () => onToggle());
  }

  render() {
    const c = this.chaos;
    this.button.textContent = c.phase === 'running' ? 'Stop chaos' : c.phase === 'settling' ? 'Settling…' : 'Start chaos';
    this.button.disabled = c.phase === 'settling';
    this.button.dataset.phase = c.phase;
    if (!c.stats) return;
    const st = c.stats;
    const t = c.checker.totals();
    const secs = Math.round(((c.report ? c.t0 + c.report.seconds * 1000 : performance.now()) - c.t0) / 1000);
    const rows = [
      ['time', `${secs} s`],
      ['acknowledged writes', st.ackedWrites],
      ['reads', st.reads],
      ['failures', `${st.unavailable + st.indeterminate + st.readFailures} (unavailable ${st.unavailable}, indeterminate ${st.indeterminate}, reads ${st.readFailures})`],
      ['faults injected', st.faults],
      ['ops checked', `${t.checked}${t.inconclusive ? ` (${t.inconclusive} segments inconclusive)` : ''}`],
      ['violations', st.violations],
      ['lost acknowledged writes', c.phase === 'done' ? st.lost : '(checked when stopped)'],
    ];
    this.counts.replaceChildren(
      ...rows.flatMap(([k, v]) => {
        const dt = document.createElement('dt');
        const dd = document.createElement('dd');
        dt.textContent = k;
        dd.textContent = String(v);
        if ((k === 'violations' || k.startsWith('lost')) && Number(v) > 0) dd.className = 'bad';
        return [dt, dd];
      }),
    );
    this.reportEl.dataset.phase = c.phase;
    if (c.report) {
      this.reportEl.dataset.report = JSON.stringify(c.report);
      const bad = c.report.violations + c.report.lost + c.report.finalReadsFailed;
      this.reportEl.textContent = bad === 0
        ? `Finished: ${c.report.ackedWrites} acknowledged writes, ${c.report.reads} reads, 0 violations, 0 lost.`
        : `Finished with problems: ${c.report.violations} violations, ${c.report.lost} lost, ${c.report.finalReadsFailed} keys unreadable. ${c.report.violationsFound.join('; ')}`;
    } else this.reportEl.textContent = '';
  }
}
