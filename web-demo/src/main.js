// The page: starts the cluster and wires the views to it. URL options:
//   ?fresh=1       wipe the nodes' IndexedDB databases first (then dropped from the URL)
//   ?chaos=SECONDS run chaos mode for that long once the cluster is up, then stop
//   ?cluster=ws://HOST:PORT[&token=T]
//                  cluster mode: the page's replicas (ids 101..) join that native
//                  cluster through the node's relay, one at a time, and the views show
//                  the whole ring, native nodes included. Frames no longer pass through
//                  the page: partitions, cut links, loss and latency do not apply, and
//                  chaos only kills and restarts the page's replicas.

import { $, h, Log, color, label, rankColors, markNative } from './dom.js';
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
import { renderTraffic, renderRelays } from './traffic-view.js';
import { NativeStatus, probeMembers } from './native-status.js';

const params = new URLSearchParams(location.search);
const log = new Log($('#log'), 200);
const network = new Network({ latencyMs: 1, jitterMs: 4 });
const seedUrl = params.get('cluster')?.trim().replace(/\/+$/, '') || null;
const clusterMode = seedUrl !== null;
const cluster = new Cluster({ network, seeds: clusterMode ? [seedUrl] : null, token: params.get('token') });
let coordinator = 1;
let native = null; // cluster mode: NativeStatus
let pkg = null; // cluster mode: the package, loaded in this thread too
let probed = []; // cluster mode: the ring's members as the seed node listed them at boot

const ids = () => [...cluster.nodes.keys()].sort((a, b) => a - b);
const observer = () => (cluster.nodes.get(coordinator)?.running ? cluster.nodes.get(coordinator) : cluster.anyRunning());

// Cluster mode: ring members that are not this page's (native nodes, replicas relayed
// for someone else), from a running replica's membership (or the boot probe).
function externalMembers() {
  const members = observer()?.snapshot?.status?.members ?? probed;
  const out = new Map();
  for (const m of members) {
    if (cluster.nodes.has(m.id)) continue;
    const kind = m.address?.startsWith('relay:') ? 'remote' : 'native';
    const polled = kind === 'native' ? native?.get(m.id) : null;
    out.set(m.id, { kind, address: m.address, status: polled?.status ?? null, error: polled?.error ?? null });
  }
  return out;
}

const ringView = new RingView($('#ring'), {
  onLink: (a, b) => {
    const up = network.toggleLink(a, b);
    log.add(`link ${a}-${b} ${up ? 'repaired' : 'cut'}`, 'log-fault');
    netPanel.render();
    render();
  },
  onNode: (id) => cluster.nodes.has(id) && select(id),
});
const zoom = new ZoomView($('#zoom'));
const messages = new Messages(ringView.layers.messages, (id) => ringView.nodePoint(id));
$('#show-gossip').addEventListener('change', (e) => (messages.showGossip = e.target.checked));
$('#animate').addEventListener('change', (e) => (messages.enabled = e.target.checked));

const netPanel = new NetworkPanel(document, { network, ids, log, onChange: () => render() });
const ops = new OpsPanel(document, { cluster, coordinator: () => coordinator, log, onKey: () => updatePref(), raw: clusterMode });
const nodesPanel = new NodesPanel($('#nodes'), {
  clusterMode,
  onRemoveMember: (id) => {
    log.add(`removing ring member ${label(id)} (not this page's)…`);
    cluster.removeMember(id).then(
      () => log.add(`ring member ${label(id)} removed`),
      (e) => log.add(`remove ${label(id)}: ${e.code ?? ''} ${e.message}`, 'log-error'),
    );
  },
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
const chaos = new Chaos(cluster, { log, onUpdate: () => chaosPanel.render(), killsOnly: clusterMode });
const chaosPanel = new ChaosPanel(document, chaos, {
  onToggle: () => (chaos.running ? chaos.stop({ baseline }) : chaos.start()),
});

$('#add-node').addEventListener('click', async () => {
  const taken = new Set([...cluster.nodes.keys(), ...externalMembers().keys()]);
  const id = clusterMode
    ? cluster.naming.ids.find((i) => !taken.has(i))
    : Array.from({ length: MAX_NODE_ID }, (_, i) => i + 1).find((i) => !cluster.nodes.has(i));
  if (!id) return log.add('no free node id', 'log-error');
  log.add(clusterMode ? `adding node ${id} (joins the native cluster through ${seedUrl})…` : `adding node ${id} (joins through node ${observer()?.id})…`);
  netPanel.render();
  try {
    await cluster.add(id, observer());
    log.add(`node ${id} added to the ring; its ranges stream to it`);
  } catch (e) {
    log.add(`add node ${id}: ${e.code ?? ''} ${e.message}`, 'log-error');
  }
});

$('#leave-cluster').addEventListener('click', async (e) => {
  const button = e.target;
  button.disabled = true;
  log.add(`this page's nodes leave the ring one at a time (their ranges move to the other nodes)…`, 'log-fault');
  try {
    await cluster.leaveAll({ onStep: (id) => log.add(`node ${id} left the ring`) });
    probed = await probeMembers(pkg, seedUrl, cluster.token).catch(() => []);
    log.add('left the cluster: this page holds no replica of it now; reload to join again');
    render();
  } catch (err) {
    log.add(`leave: ${err.code ?? ''} ${err.message}`, 'log-error');
  } finally {
    button.disabled = false;
  }
});

const coordSelect = $('#coordinator');
coordSelect.addEventListener('change', () => select(Number(coordSelect.value)));
function select(id) {
  if (!cluster.nodes.has(id)) return;
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
      ...pref.nodes.map((n) => h('b', { class: 'chip', style: `background:${color(n)}` }, label(n))));
    ringView.setKey(pref);
    zoom.render(obs.snapshot?.ring, pref);
  } catch (e) {
    el.textContent = `preference list: ${e.message}`;
  }
}

let lastIds = '';
let lastRing = '';
let lastMembers = '';
function render() {
  const obs = observer();
  const external = clusterMode ? externalMembers() : undefined;
  const m = clusterModel(cluster.nodes, { observer: obs?.id, coordinator, side: (id) => network.side(id), external });
  if (clusterMode && m.ids.join() !== lastMembers) {
    lastMembers = m.ids.join();
    rankColors(m.ids);
    markNative([...external].filter(([, e]) => e.kind === 'native').map(([id]) => id));
    native?.track([...external].filter(([, e]) => e.kind === 'native').map(([id, e]) => ({ id, address: e.address })));
    ringView.setRing(null); // redrawn below in the new colours
    lastRing = '';
  }
  if (m.own.join() !== lastIds) {
    lastIds = m.own.join();
    coordSelect.replaceChildren(...m.own.map((id) => h('option', { value: id }, `node ${id}`)));
    coordSelect.value = String(coordinator);
    netPanel.render();
  }
  for (const opt of coordSelect.options) {
    const n = cluster.nodes.get(Number(opt.value));
    opt.textContent = `node ${opt.value}${n.running ? '' : ` (${n.state})`}${network.partitioned ? ` · side ${network.side(n.id)}` : ''}`;
  }
  const ring = obs?.snapshot?.ring;
  ringView.setRing(ring);
  ringView.setNodes(m.rows, (a, b) => network.linkDown(a, b), { clusterMode });
  nodesPanel.update(m.rows, m.sync);

  const health = $('#health');
  health.dataset.allAlive = String(m.allAlive);
  const syncEl = $('#sync-status');
  syncEl.dataset.inSync = String(m.inSync);
  if (clusterMode) {
    const natives = m.rows.filter((r) => r.kind === 'native').length;
    health.dataset.members = String(m.ids.length);
    health.dataset.native = String(natives);
    // The committed layout every running page replica has, once none has a change pending.
    const layouts = new Set(m.rows.filter((r) => r.kind === 'page' && r.process === 'running')
      .map((r) => { const st = r.snapshot?.status; return st && st.role === 'member' && st.pendingVersion == null ? st.layoutVersion : null; }));
    health.dataset.layout = layouts.size === 1 && !layouts.has(null) && m.running === m.own.length ? String([...layouts][0]) : '';
    health.textContent = `${m.ids.length} ring members (${natives} native, ${m.own.length} in this page)` +
      (m.allAlive ? ', all alive as the page\'s replicas see them' : `; ${m.running}/${m.own.length} page replicas running`);
    syncEl.textContent = m.inSync
      ? `Merkle roots match on all ${m.compared} ranges the page can compare`
      : `${m.notInSync} of ${m.compared} comparable ranges not in sync`;
    syncEl.title = `compared among the page's replicas only: native nodes do not report their roots (${m.sync.unobserved} ranges have one browser replica and native ones)`;
  } else {
    health.textContent = m.allAlive ? `${m.ids.length} nodes up, all see each other alive` : `${m.running}/${m.ids.length} nodes running`;
    syncEl.textContent = m.inSync ? 'all Merkle roots match' : `${m.notInSync} of ${m.sync.ranges.length} ranges not in sync`;
  }

  const ringSig = ring ? `${ring.version}:${ring.pending}:${obs.id}` : '';
  if (ringSig !== lastRing) {
    lastRing = ringSig;
    updatePref();
  }
  if (clusterMode) renderRelays($('#traffic-table'), ids().map((id) => cluster.nodes.get(id)));
  else renderTraffic($('#traffic-table'), cluster.frames, messages.unshown);
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

// Cluster mode: the page's texts and controls say what applies.
function enterClusterMode() {
  document.body.dataset.mode = 'cluster';
  $('#subtitle').textContent = `browser replicas in the native cluster at ${seedUrl}`;
  $('#ring-hint').textContent = 'Squares are native nodes, circles this page\'s replicas (click one to use it as coordinator). ' +
    'Lines are real WebSocket connections: the native mesh, and each replica\'s link to the native node that relays its frames.';
  $('#traffic-title').textContent = 'Relay connections';
  for (const sel of ['#animate', '#show-gossip']) {
    $(sel).checked = false;
    $(sel).disabled = true;
  }
  messages.enabled = false;
  $('#net-hint').textContent = 'Cluster mode: frames travel over WebSocket between the workers and the native node relaying them, ' +
    'not through this page, so partitions, cut links, loss and latency do not apply (and messages are not animated).';
  netPanel.disable('not available in cluster mode');
  $('#leave-cluster').hidden = false;
  $('#nodes-hint').hidden = false;
  $('#chaos-hint').textContent = 'Cluster mode: chaos only kills and restarts this page\'s replicas (frames do not pass through the page) ' +
    'while 4 clients write and read through them; a linearizability checker runs on every operation.';
}

// Cluster mode, before any replica opens: the package in this thread (for the native
// nodes' status) and the ring's current members, so a first visit picks free ids.
async function connectCluster() {
  if (!/^wss?:\/\/[^/]+/.test(seedUrl)) throw new Error(`?cluster= needs a ws:// or wss:// URL, not ${JSON.stringify(seedUrl)}`);
  pkg = await import('/pkg/browser.js');
  native = new NativeStatus(pkg, { seedUrl, token: cluster.token, onUpdate: scheduleRender });
  try {
    probed = await probeMembers(pkg, seedUrl, cluster.token);
  } catch (e) {
    if (e.code === 'INVALID_ARGUMENT') {
      throw new Error(`the native cluster at ${seedUrl} refused the page (${e.message}): ` +
        `${cluster.token ? 'a wrong' : 'no'} &token=`);
    }
    throw new Error(`cannot reach the native cluster at ${seedUrl} (${e.code ?? ''} ${e.message}); is it running? ` +
      '(cargo run --release -p ringkv -- dev-cluster listens on ws://127.0.0.1:7001-7003)');
  }
  markNative(probed.filter((m) => !m.address?.startsWith('relay:')).map((m) => m.id));
  log.add(`native cluster at ${seedUrl}: ${probed.length} members (${probed.map((m) => label(m.id)).join(', ')})`);
}

// Cluster mode, ?fresh=1: this browser's replicas from an earlier visit may still be
// ring members. Wiping their databases would leave dead members behind, and five of
// eight is a majority: the ring could then neither add nor remove anyone. So they are
// reopened and leave first (their ranges move to the other nodes), then wiped.
async function leaveBeforeWipe() {
  const members = new Set(probed.map((m) => m.id));
  const previous = cluster.saved().filter((id) => members.has(id));
  if (!previous.length) return;
  log.add(`?fresh=1: nodes ${previous.join(', ')} from an earlier visit are ring members; they leave the ring first ` +
    '(their ranges move to the other nodes), then their databases are wiped', 'log-fault');
  const failed = await cluster.startAll(previous);
  if (failed.length) {
    throw new Error(`nodes ${failed.join(', ')} could not reopen to leave the ring (open in another tab?); nothing was wiped`);
  }
  render();
  for (const id of previous) {
    log.add(`node ${id} leaving the ring…`);
    await cluster.remove(id);
    log.add(`node ${id} left the ring`);
  }
}

async function boot() {
  if (clusterMode) {
    enterClusterMode();
    await connectCluster();
  }
  if (params.has('fresh')) {
    if (clusterMode) {
      await leaveBeforeWipe();
      probed = await probeMembers(pkg, seedUrl, cluster.token);
    }
    await cluster.wipe();
    params.delete('fresh');
    history.replaceState(null, '', location.pathname + (params.size ? `?${params}` : ''));
    log.add(clusterMode ? 'wiped this page\'s IndexedDB databases for this cluster' : 'wiped every node\'s IndexedDB database');
  }
  const start = ids().length ? ids() : cluster.savedIds(probed.map((m) => m.id));
  if (clusterMode) {
    const foreign = probed.filter((m) => m.address?.startsWith('relay:') && !start.includes(m.id));
    if (foreign.length) {
      log.add(`ring members ${foreign.map((m) => m.id).join(', ')} are relayed replicas that are not this page's ` +
        '(another tab or process, or databases wiped outside the page); one gone for good can be removed from its card', 'log-fault');
    }
    log.add(`starting nodes ${start.join(', ')} one at a time (one worker and IndexedDB database each; each joins through ${seedUrl})`);
  } else log.add(`starting nodes ${start.join(', ')} (one worker and IndexedDB database each)`);
  if (clusterMode) coordinator = start[0] ?? coordinator;
  const failed = await cluster.startAll(start, {
    onOpened: (id) => {
      log.add(`node ${id} is a ring member`);
      render();
    },
  });
  if (failed.length) {
    const why = failed.map((id) => cluster.nodes.get(id)?.error).find(Boolean);
    log.add(`nodes ${failed.join(', ')} failed to open${why ? `: ${why.code ?? ''} ${why.message}` : ''}`, 'log-error');
    const foreign = probed.filter((m) => m.address?.startsWith('relay:') && !cluster.nodes.has(m.id));
    if (clusterMode && foreign.length) {
      log.add(`a membership change needs a majority of the ring's members; relayed members ${foreign.map((m) => m.id).join(', ')} ` +
        'are not this page\'s and may be down: reopen the page that holds them (or have it leave the cluster)', 'log-error');
    }
  }
  coordinator = (clusterMode ? ids().find((id) => cluster.nodes.get(id).running) : undefined) ?? ids()[0] ?? 1;
  document.body.dataset.ready = 'true';
  render();
  const chaosSeconds = Number(params.get('chaos'));
  if (chaosSeconds > 0) {
    chaos.start();
    setTimeout(() => chaos.stop({ baseline }), chaosSeconds * 1000);
  }
}

window.ringkvDemo = { cluster, network, chaos, native: () => native }; // for the console
boot().catch((e) => {
  log.add(`boot failed: ${e.message}`, 'log-error');
  $('#health').textContent = `boot failed: ${e.message}`;
  document.body.dataset.bootError = e.message;
});
