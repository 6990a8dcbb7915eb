// The page: starts the cluster and wires the views to it. URL options:
//   ?fresh=1       wipe the nodes' IndexedDB databases first (then dropped from the URL)
//   ?chaos=SECONDS run chaos mode for that long once the cluster is up, then stop

import { $, h, Log, color } from './dom.js';
import { Cluster, MAX_NODE_ID } from './cluster.js';
import { Network } from './network.js';
import { RingView } from './ring-view.js';
import { ZoomView } from './zoom-view.js';
import { Messages } from './messages.js';
import { NodesPanel } from './nodes-panel.js';
import { OpsPanel } from './ops-panel.js';
import { NetworkPanel } from './network-panel.js';
import { Chaos } from './chaos.js';
import { ChaosPanel } from './chaos-panel.js';
import { clusterModel } from './model.js';
import { renderTraffic } from './traffic-view.js';

const params = new URLSearchParams(location.search);
const log = new Log($('#log'), 200);
const network = new Network({ latencyMs: 1, jitterMs: 4 });
const cluster = new Cluster({ network });
let coordinator = 1;

const ids = () => [...cluster.nodes.keys()].sort((a, b) => a - b);
const observer = () => (cluster.nodes.get(coordinator)?.running ? cluster.nodes.get(coordinator) : cluster.anyRunning());

const ringView = new RingView($('#ring'), {
  onLink: (a, b) => {
    const up = network.toggleLink(a, b);
    log.add(`link ${a}-${b} ${up ? 'repaired' : 'cut'}`, 'log-fault');
    netPanel.render();
    render();
  },
  onNode: (id) => select(id),
});
const zoom = new ZoomView($('#zoom'));
const messages = new Messages(ringView.layers.messages, (id) => ringView.nodePoint(id));
$('#show-gossip').addEventListener('change', (e) => (messages.showGossip = e.target.checked));
$('#animate').addEventListener('change', (e) => (messages.enabled = e.target.checked));

const netPanel = new NetworkPanel(document, { network, ids, log, onChange: () => render() });
const ops = new OpsPanel(document, { cluster, coordinator: () => coordinator, log, onKey: () => updatePref() });
const nodesPanel = new NodesPanel($('#nodes'), {
  onKill: (id) => {
    cluster.kill(id);
    log.add(`node ${id} killed`, 'log-fault');
  },
  onRestart: (id) => cluster.restart(id),
  onRemove: (id) => {
    log.add(`removing node ${id}…`);
    cluster.remove(id).then(
      () => log.add(`node ${id} removed`),
      (e) => log.add(`remove ${id}: ${e.code ?? ''} ${e.message}`, 'log-error'),
    );
  },
  onSelect: (id) => select(id),
});
const baseline = { latencyMs: network.latencyMs, jitterMs: network.jitterMs, lossRate: network.lossRate };
const chaos = new Chaos(cluster, { log, onUpdate: () => chaosPanel.render() });
const chaosPanel = new ChaosPanel(document, chaos, {
  onToggle: () => (chaos.running ? chaos.stop({ baseline }) : chaos.start()),
});

$('#add-node').addEventListener('click', async () => {
  const id = Array.from({ length: MAX_NODE_ID }, (_, i) => i + 1).find((i) => !cluster.nodes.has(i));
  if (!id) return log.add('no free node id', 'log-error');
  log.add(`adding node ${id} (joins through node ${observer()?.id})…`);
  netPanel.render();
  try {
    await cluster.add(id, observer());
    log.add(`node ${id} added to the ring; its ranges stream to it`);
  } catch (e) {
    log.add(`add node ${id}: ${e.code ?? ''} ${e.message}`, 'log-error');
  }
});

const coordSelect = $('#coordinator');
coordSelect.addEventListener('change', () => select(Number(coordSelect.value)));
function select(id) {
  coordinator = id;
  coordSelect.value = String(id);
  render();
}

// The typed key's preference list, asked of the observer replica.
let prefSeq = 0;
async function updatePref() {
  const seq = ++prefSeq;
  const key = $('#op-key').value;
  const obs = observer();
  const el = $('#pref-list');
  if (!obs) return;
  try {
    const pref = await obs.call('preferenceList', [key]);
    if (seq !== prefSeq) return;
    el.dataset.key = key;
    el.dataset.nodes = pref.nodes.join(',');
    el.dataset.position = String(pref.position);
    el.replaceChildren(`key ${JSON.stringify(key)} at ${pref.position.toFixed(4)} → replicas `,
      ...pref.nodes.map((n) => h('b', { class: 'chip', style: `background:${color(n)}` }, String(n))));
    ringView.setKey(pref);
    zoom.render(obs.snapshot?.ring, pref);
  } catch (e) {
    el.textContent = `preference list: ${e.message}`;
  }
}

let lastIds = '';
let lastRing = '';
function render() {
  const obs = observer();
  const m = clusterModel(cluster.nodes, { observer: obs?.id, coordinator, side: (id) => network.side(id) });
  if (m.ids.join() !== lastIds) {
    lastIds = m.ids.join();
    coordSelect.replaceChildren(...m.ids.map((id) => h('option', { value: id }, `node ${id}`)));
    coordSelect.value = String(coordinator);
    netPanel.render();
  }
  for (const opt of coordSelect.options) {
    const n = cluster.nodes.get(Number(opt.value));
    opt.textContent = `node ${opt.value}${n.running ? '' : ` (${n.state})`}${network.partitioned ? ` · side ${network.side(n.id)}` : ''}`;
  }
  const ring = obs?.snapshot?.ring;
  ringView.setRing(ring);
  ringView.setNodes(m.rows, (a, b) => network.linkDown(a, b));
  nodesPanel.update(m.rows, m.sync);

  const health = $('#health');
  health.dataset.allAlive = String(m.allAlive);
  health.textContent = m.allAlive ? `${m.ids.length} nodes up, all see each other alive` : `${m.running}/${m.ids.length} nodes running`;
  const syncEl = $('#sync-status');
  syncEl.dataset.inSync = String(m.inSync);
  syncEl.textContent = m.inSync ? 'all Merkle roots match' : `${m.notInSync} of ${m.sync.ranges.length} ranges not in sync`;

  const ringSig = ring ? `${ring.version}:${ring.pending}:${obs.id}` : '';
  if (ringSig !== lastRing) {
    lastRing = ringSig;
    updatePref();
  }
  renderTraffic($('#traffic-table'), cluster.frames, messages.unshown);
  chaosPanel.render();
}

let renderQueued = false;
function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  setTimeout(() => {
    renderQueued = false;
    render();
  }, 250);
}
cluster.on('snapshot', scheduleRender);
cluster.on('state', (id, state) => {
  if (state !== 'starting') log.add(`node ${id}: ${state}`, state === 'running' ? null : 'log-fault');
  scheduleRender();
});
cluster.on('frame', (f) => messages.add(f));

async function boot() {
  if (params.has('fresh')) {
    await Cluster.wipe();
    params.delete('fresh');
    history.replaceState(null, '', location.pathname + (params.size ? `?${params}` : ''));
    log.add('wiped every node\'s IndexedDB database');
  }
  const start = ids().length ? ids() : Cluster.savedIds();
  log.add(`starting nodes ${start.join(', ')} (one worker and IndexedDB database each)`);
  const failed = await cluster.startAll(start);
  if (failed.length) log.add(`nodes ${failed.join(', ')} failed to open`, 'log-error');
  coordinator = ids()[0] ?? 1;
  document.body.dataset.ready = 'true';
  render();
  const chaosSeconds = Number(params.get('chaos'));
  if (chaosSeconds > 0) {
    chaos.start();
    setTimeout(() => chaos.stop({ baseline }), chaosSeconds * 1000);
  }
}

window.ringkvDemo = { cluster, network, chaos }; // for the console
boot().catch((e) => log.add(`boot failed: ${e.message}`, 'log-error'));
