// shardvec routing explorer: loads a snapshot with the shardvec-wasm package
// (`Snapshot.open`), shows its shards, a PCA projection of its centroids and
// of sample vectors coloured by the shard they route to, and explains the
// routing decision for a query. Served by a shardvec host (`shardvec serve
// --demo-dir web-demo`, at /demo/) it loads the host's snapshot
// (`Snapshot.fromHost`) and searches on it. Plain ES modules, no build step beyond
// wasm-pack (`./pkg/` is the package built with `--target web`).
//
// Test hook: `window.demo` (see the end of this file).

import { dist, gaussian, mulberry32, pca2 } from './pca.js';

const $ = (sel) => document.querySelector(sel);
const SVG_NS = 'http://www.w3.org/2000/svg';
const W = 720;
const H = 540;
const PAD = 34;

// Tableau 10, then generated hues for larger snapshots.
const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];
const color = (shard) =>
  shard < PALETTE.length ? PALETTE[shard] : `hsl(${(shard * 137.508) % 360} 55% 52%)`;

const state = {
  wasm: null,
  snap: null,
  url: null,
  info: null,
  shards: [],
  meta: null,
  centroids: [], // Float32Array rows
  queries: [], // recorded queries: {query, args, route?}
  samples: [], // {v: Float32Array, shard}
  pca: null,
  query: null, // Float32Array
  numProbes: 1,
  shardIds: [0],
  routingContext: {},
  recordedIndex: -1,
  explanation: null,
  probed: [],
  routeError: null,
};

// ---- small DOM helpers ---------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('data-')) e.setAttribute(k, v);
    else if (k in e && typeof v !== 'string') e[k] = v;
    else e.setAttribute(k, v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) e.append(c);
  return e;
}

function svg(tag, attrs = {}) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) e.setAttribute(k, v);
  return e;
}

function swatch(shard) {
  return el('span', { class: 'swatch', style: `background:${color(shard)}` });
}

const fmt = (x, digits = 4) => {
  if (typeof x !== 'number') return String(x);
  if (x === 0) return '0';
  const a = Math.abs(x);
  if (a >= 1e5 || a < 1e-3) return x.toExponential(3);
  return Number(x.toPrecision(digits + 1)).toString();
};

function setStatus(kind, text) {
  const s = $('#status');
  s.className = `status ${kind}`;
  s.textContent = text;
}

// ---- loading -----------------------------------------------------------------------

async function loadWasm() {
  try {
    const mod = await import('./pkg/shardvec_wasm.js');
    await mod.default();
    state.wasm = mod;
  } catch (e) {
    document.body.dataset.state = 'error';
    setStatus('error', `The shardvec-wasm package could not be loaded from ./pkg/ (${e.message}). Build it with: bash scripts/wasm.sh`);
    throw e;
  }
}

async function fetchJson(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`GET ${url}: HTTP ${r.status} ${r.statusText}`.trim());
  return r.json();
}

/** Loads the snapshot at `url`, and recorded queries from `queriesUrl`
 * (default: `<url>.json`, silently skipped when absent). With `viaHost`,
 * `url` is a shardvec host: the snapshot comes from its routing files
 * (`Snapshot.fromHost`) and live search goes to it. */
async function loadSnapshot(url, queriesUrl, viaHost = false) {
  const abs = new URL(url, location.href).href.replace(/\/+$/, '');
  document.body.dataset.state = 'loading';
  $('#load-button').disabled = true;
  setStatus('', `Loading ${abs} …`);
  try {
    const t0 = performance.now();
    const snap = viaHost ? await state.wasm.Snapshot.fromHost(abs) : await state.wasm.Snapshot.open(abs);
    const ms = performance.now() - t0;
    state.snap?.free?.();
    state.snap = snap;
    state.url = abs;
    state.info = snap.info();
    state.shards = snap.shards();
    state.meta = snap.vectorMeta();
    const c = snap.centroids();
    state.centroids = c ? rows(c, snap.dim) : [];
    state.queries = [];
    const qUrl = queriesUrl || `${abs}.json`;
    if (!viaHost || queriesUrl) try {
      const doc = await fetchJson(qUrl);
      if (Array.isArray(doc.queries)) state.queries = doc.queries.filter((q) => Array.isArray(q.query) && q.query.length === snap.dim);
    } catch (e) {
      if (queriesUrl) setStatus('error', `Recorded queries: ${e.message}`);
    }
    makeSamples();
    state.pca = pca2([...state.centroids, ...state.samples.map((s) => s.v), ...state.queries.map((q) => q.query)]);
    resetQueryDefaults();
    $('#snapshot-url').value = viaHost ? '' : abs;
    if (viaHost) $('#host-url').value = abs;
    if (queriesUrl) $('#queries-url').value = queriesUrl;
    const params = new URLSearchParams(location.search);
    params.delete(viaHost ? 'snapshot' : 'host');
    params.set(viaHost ? 'host' : 'snapshot', abs);
    if (queriesUrl) params.set('queries', queriesUrl);
    else params.delete('queries');
    history.replaceState(null, '', `?${params}`);
    $('#app').hidden = false;
    renderInfo();
    renderShardTable();
    renderQueryControls();
    renderMap();
    update();
    const extra = state.queries.length ? ` · ${state.queries.length} recorded queries` : '';
    setStatus('ok', `Loaded ${abs} in ${ms.toFixed(0)} ms — ${state.info.num_dbs} shards, ${state.info.total_vectors} vectors, ${state.info.sharding.toUpperCase()} routing${extra}`);
    document.body.dataset.state = 'ready';
  } catch (e) {
    document.body.dataset.state = 'error';
    setStatus('error', e.message);
    throw e;
  } finally {
    $('#load-button').disabled = false;
  }
}

function rows(flat, dim) {
  const out = [];
  for (let i = 0; i < flat.length; i += dim) out.push(flat.slice(i, i + dim));
  return out;
}

/** Sample vectors to show where the space goes: Gaussian blobs around the
 * centroids (CLUSTER), around the recorded queries when there are some, or
 * isotropic; each coloured by its shard (probe 1 = the writer's choice). */
function makeSamples() {
  const snap = state.snap;
  const rand = mulberry32(0x5eed + snap.dim * 31 + snap.numDbs);
  const dim = snap.dim;
  // Centres: the centroids, else the distinct recorded queries.
  const seen = new Set();
  const centres = (state.centroids.length ? state.centroids : state.queries.map((q) => Float32Array.from(q.query))).filter((c) => {
    const k = c.join(',');
    return !seen.has(k) && seen.add(k);
  });
  // Spread: a fraction of the median distance from a centre to its nearest
  // neighbour, per dimension.
  let sigma = 1;
  if (centres.length > 1) {
    const nn = centres.map((c, i) => Math.min(...centres.map((d, j) => (i === j ? Infinity : dist(c, d))))).sort((a, b) => a - b);
    const median = nn[Math.floor(nn.length / 2)] || nn[nn.length - 1] || 1;
    sigma = ((state.centroids.length ? 0.4 : 0.6) * median) / Math.sqrt(dim);
  } else if (centres.length === 1) {
    sigma = Math.hypot(...centres[0]) / Math.sqrt(dim) || 1;
  }
  const n = 900;
  const samples = [];
  for (let k = 0; k < n; k++) {
    const v = new Float32Array(dim);
    const c = centres.length ? centres[k % centres.length] : null;
    for (let i = 0; i < dim; i++) v[i] = (c ? c[i] : 0) + gaussian(rand) * sigma;
    samples.push({ v, shard: sampleShard(v) });
  }
  state.samples = samples;
}

/** The shard a vector is written to: probe 1 of CLUSTER / LSH; for CEL and
 * EXPLICIT the vector does not decide (null). */
function sampleShard(v) {
  const s = state.snap.strategy;
  if (s !== 'cluster' && s !== 'lsh') return null;
  try {
    return state.snap.route(v, { numProbes: 1 })[0];
  } catch {
    return null;
  }
}

function resetQueryDefaults() {
  const snap = state.snap;
  state.numProbes = Math.min(snap.defaultProbes, snap.numDbs);
  state.shardIds = [0];
  state.recordedIndex = -1;
  const firstCtx = state.queries.find((q) => q.args?.routing_context)?.args.routing_context;
  if (firstCtx) state.routingContext = { ...firstCtx };
  else {
    const ctx = {};
    const cols = state.meta.cel_columns || {};
    const values = state.meta.routing_values;
    for (const [name, ty] of Object.entries(cols)) {
      ctx[name] = values && Object.keys(cols).length === 1 ? values[0] : { string: 'acme', int: 1, uint: 1, double: 0.5, bool: true, bytes: 'acme' }[ty] ?? 'acme';
    }
    state.routingContext = ctx;
  }
  if (state.queries.length) {
    selectRecorded(0, false);
  } else {
    state.query = Float32Array.from(state.samples[0]?.v ?? state.centroids[0] ?? new Float32Array(snap.dim));
  }
}

// ---- rendering: info and shards ---------------------------------------------------

function renderInfo() {
  const i = state.info;
  const m = state.meta;
  const dl = $('#info');
  dl.replaceChildren();
  const add = (k, v) => dl.append(el('dt', { text: k }), el('dd', {}, v));
  add('strategy', el('span', { class: 'pill', text: i.sharding.toUpperCase() }));
  add('metric', el('code', { text: i.metric }));
  add('shards', String(i.num_dbs));
  add('vectors', i.total_vectors.toLocaleString('en'));
  add('dimension', String(i.dim));
  if (i.sharding === 'cluster' || i.sharding === 'lsh') add('default probes', String(m.num_probes));
  if (m.num_hash_bits) add('hash bits', String(m.num_hash_bits));
  if (m.cel_expr) add('CEL', el('code', { text: m.cel_expr }));
  if (m.routing_values) add('routing values', el('code', { text: JSON.stringify(m.routing_values) }));
  if (m.index_type) add('index', m.index_type + (m.quantization ? ` / ${m.quantization}` : ''));
  add('run', el('code', { text: i.run_id, title: i.run_id }));
  add('manifest', el('code', { text: i.manifest_ref ?? '—', title: i.manifest_ref ?? '' }));
}

function renderShardTable() {
  const tbody = $('#shard-table tbody');
  tbody.replaceChildren();
  const max = Math.max(1, ...state.shards.map((s) => s.vector_count));
  for (const s of state.shards) {
    let loc = 'empty shard: no data, skipped at search time';
    if (s.db_url) {
      try {
        loc = state.snap.resolveUrl(s.db_url);
      } catch (e) {
        loc = `⚠ ${e.message}`;
      }
    }
    const tr = el(
      'tr',
      { 'data-shard': String(s.db_id), class: s.vector_count ? '' : 'empty', title: loc },
      el('td', {}, swatch(s.db_id), String(s.db_id)),
      el(
        'td',
        { class: 'num count', 'data-count': String(s.vector_count) },
        s.vector_count.toLocaleString('en'),
        el('span', { class: 'countbar', style: `width:${(100 * s.vector_count) / max}%` }),
      ),
      el('td', { class: 'probe' }),
      el('td', { class: 'mono', title: s.checkpoint_id ?? '' }, s.checkpoint_id ? s.checkpoint_id.slice(0, 10) : '—'),
    );
    tbody.append(tr);
  }
}

// ---- rendering: query controls -------------------------------------------------------

function renderQueryControls() {
  const snap = state.snap;
  const strategy = snap.strategy;
  const probesUsed = strategy === 'cluster' || strategy === 'lsh';
  const slider = $('#num-probes');
  slider.max = String(snap.numDbs);
  slider.value = String(state.numProbes);
  slider.disabled = !probesUsed;
  $('#num-probes-value').textContent = String(state.numProbes);
  $('#probes-row').classList.toggle('disabled', !probesUsed);
  $('#probes-note').textContent = probesUsed ? `default ${snap.defaultProbes}` : `not used by ${strategy.toUpperCase()} routing`;
  $('#shard-ids-row').hidden = strategy !== 'explicit';
  $('#shard-ids').value = state.shardIds.join(', ');
  $('#context-row').hidden = strategy !== 'cel';
  $('#routing-context').value = JSON.stringify(state.routingContext, null, 1);
  const cols = state.meta.cel_columns;
  $('#cel-columns').textContent = cols ? `columns: ${Object.entries(cols).map(([k, t]) => `${k}: ${t}`).join(', ')}` : '';
  const sel = $('#recorded-query');
  sel.replaceChildren(el('option', { value: '-1', text: state.queries.length ? 'Recorded queries…' : 'No recorded queries' }));
  sel.disabled = !state.queries.length;
  state.queries.forEach((q, i) => {
    const args = Object.entries(q.args ?? {})
      .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
      .join(' ');
    sel.append(el('option', { value: String(i), text: `#${i} ${args || '(defaults)'}${q.route ? ` → [${q.route}]` : ''}` }));
  });
  sel.value = String(state.recordedIndex);
  $('#query-vector').value = JSON.stringify(Array.from(state.query));
  $('#context-error').textContent = '';
  $('#query-error').textContent = '';
}

function selectRecorded(i, rerender = true) {
  const q = state.queries[i];
  if (!q) return;
  state.recordedIndex = i;
  state.query = Float32Array.from(q.query);
  const a = q.args ?? {};
  if (a.num_probes !== undefined) state.numProbes = Math.min(a.num_probes, state.snap.numDbs);
  else state.numProbes = Math.min(state.snap.defaultProbes, state.snap.numDbs);
  if (a.shard_ids) state.shardIds = a.shard_ids.slice();
  if (a.routing_context) state.routingContext = { ...a.routing_context };
  if (rerender) {
    renderQueryControls();
    update();
  }
}

// ---- routing --------------------------------------------------------------------------

function routeOptions() {
  const s = state.snap.strategy;
  const o = {};
  if (s === 'cluster' || s === 'lsh') o.numProbes = state.numProbes;
  if (s === 'explicit') o.shardIds = state.shardIds;
  if (s === 'cel') o.routingContext = state.routingContext;
  return o;
}

function update() {
  const snap = state.snap;
  try {
    state.explanation = snap.explain(state.query, routeOptions());
    state.probed = state.explanation.shards.slice();
    state.routeError = null;
  } catch (e) {
    state.explanation = null;
    state.probed = [];
    state.routeError = e.message;
  }
  const probed = $('#probed');
  probed.textContent = state.probed.length ? state.probed.join(', ') : '—';
  probed.dataset.shards = JSON.stringify(state.probed);
  // Agreement with the recorded route, when a recorded query is shown as recorded.
  const badge = $('#recorded-check');
  const rec = state.queries[state.recordedIndex];
  const want = rec && (rec.route ?? rec.args?.shard_ids);
  if (rec && want && sameArgs(rec.args ?? {})) {
    const ok = JSON.stringify(want) === JSON.stringify(state.probed);
    badge.hidden = false;
    badge.className = `badge ${ok ? 'ok' : 'bad'}`;
    badge.textContent = ok ? '✓ same as the recorded route' : `✗ recorded [${want}]`;
  } else {
    badge.hidden = true;
  }
  $('#query-vector').value = JSON.stringify(Array.from(state.query));
  renderDecision();
  highlight();
}

/** Whether the current options are those of the recorded query `args`. */
function sameArgs(args) {
  const s = state.snap.strategy;
  if (args.shard_ids) return s === 'explicit' && JSON.stringify(args.shard_ids) === JSON.stringify(state.shardIds);
  if (s === 'cel') return JSON.stringify(args.routing_context) === JSON.stringify(state.routingContext);
  const p = args.num_probes ?? state.snap.defaultProbes;
  return Math.min(p, state.snap.numDbs) === state.numProbes;
}

// ---- rendering: decision ------------------------------------------------------------

function renderDecision() {
  const box = $('#decision');
  box.replaceChildren();
  if (state.routeError) {
    box.append(el('div', { class: 'error', text: state.routeError }));
    return;
  }
  const ex = state.explanation;
  const probeRank = new Map(state.probed.map((s, i) => [s, i]));
  if (ex.kind === 'explicit') {
    box.append(
      el('p', { class: 'explain-note' }, 'The request names its shards (', el('code', { text: 'shard_ids' }), '): they override every strategy. Duplicates are dropped, the first occurrence keeps its place.'),
      el('div', { class: 'value-box' }, ...ex.shards.map((s) => el('span', { style: 'margin-right:10px' }, swatch(s), `shard ${s}`))),
    );
  } else if (ex.kind === 'cluster') {
    const metricNote = { l2: 'squared Euclidean distance', cosine: '1 − cos(query, centroid)', dot_product: '− dot(query, centroid)' }[state.snap.metric];
    box.append(
      el('p', { class: 'explain-note' }, `CLUSTER probes the ${state.numProbes} nearest centroid${state.numProbes > 1 ? 's' : ''} by ${metricNote}, in a stable order (ties → lower shard id); probe 1 is where the writer put this vector.`),
    );
    const dmin = Math.min(...ex.distances);
    const dmax = Math.max(...ex.distances);
    const counts = new Map();
    for (const d of ex.distances) counts.set(d, (counts.get(d) ?? 0) + 1);
    const table = el('table', { class: 'decision' }, el('thead', {}, el('tr', {}, el('th', { text: 'rank' }), el('th', { text: 'shard' }), el('th', { class: 'num', text: 'distance' }), el('th', { text: '' }), el('th', { text: '' }))));
    const tb = el('tbody');
    ex.ranking.forEach((s, r) => {
      const d = ex.distances[s];
      const w = dmax > dmin ? 6 + (54 * (d - dmin)) / (dmax - dmin) : 6;
      tb.append(
        el(
          'tr',
          { class: probeRank.has(s) ? 'probed' : '', 'data-shard': String(s) },
          el('td', { text: String(r + 1) }),
          el('td', {}, swatch(s), String(s)),
          el('td', { class: 'num', title: String(d) }, fmt(d, 6), counts.get(d) > 1 ? el('span', { class: 'tie', text: 'tie' }) : null),
          el('td', {}, el('span', { class: 'dbar', style: `width:${w}px` })),
          el('td', { text: probeRank.has(s) ? 'probed' : '' }),
        ),
      );
    });
    table.append(tb);
    box.append(table);
  } else if (ex.kind === 'lsh') {
    const bits = ex.projections.length;
    const flipped = new Set(ex.buckets.filter((b) => b.probed && b.flipped_bit !== null).map((b) => b.flipped_bit));
    box.append(
      el('p', { class: 'explain-note' }, `LSH hashes the query with ${bits} hyperplanes: bit i is 1 when hᵢ·q > 0. The code picks the primary bucket (code mod ${state.snap.numDbs}); multi-probe then flips bit 0, 1, … and adds each new shard until ${state.numProbes} shard${state.numProbes > 1 ? 's are' : ' is'} probed.`),
    );
    const bitRow = el('div', { class: 'bits', 'aria-label': 'hash bits' });
    ex.projections.forEach((p, i) => {
      const one = p > 0;
      bitRow.append(el('div', { class: `bit ${one ? 'one' : 'zero'}${flipped.has(i) ? ' flipped' : ''}`, title: `h${i}·q = ${p}`, 'data-tip': `h${i}·q = ${fmt(p, 6)}` }, one ? '1' : '0', el('small', { text: `h${i}` })));
    });
    box.append(bitRow);
    const code = BigInt(ex.code);
    box.append(el('div', { class: 'value-box mono' }, `code = ${code.toString(2).padStart(bits, '0')}₂ = ${code} → shard ${code} mod ${state.snap.numDbs} = ${ex.buckets[0].shard}`));
    const table = el('table', { class: 'decision' }, el('thead', {}, el('tr', {}, el('th', { text: 'bucket' }), el('th', { text: 'code' }), el('th', { text: 'shard' }), el('th', { text: '' }))));
    const tb = el('tbody');
    for (const b of ex.buckets) {
      const c = BigInt(b.code);
      tb.append(
        el(
          'tr',
          { class: b.probed ? 'probed' : '' },
          el('td', { text: b.flipped_bit === null ? 'primary' : `flip bit ${b.flipped_bit}` }),
          el('td', { class: 'mono', text: `${c.toString(2).padStart(bits, '0')} (${c})` }),
          el('td', {}, swatch(b.shard), String(b.shard)),
          el('td', { text: b.probed ? `probed #${probeRank.get(b.shard) + 1}` : 'already probed' }),
        ),
      );
    }
    table.append(tb);
    box.append(table);
  } else if (ex.kind === 'cel') {
    const m = state.meta;
    box.append(
      el('p', { class: 'explain-note' }, 'CEL evaluates the manifest\'s expression on the request\'s routing context. ', m.routing_values ? 'The value is looked up in the snapshot\'s routing_values; its index is the shard.' : 'The value is the shard id.'),
      el('div', { class: 'value-box' }, el('div', {}, el('code', { text: m.cel_expr })), el('div', { class: 'mono', style: 'margin-top:4px' }, `context ${JSON.stringify(state.routingContext)}`)),
      el('div', { class: 'value-box' }, 'value = ', el('strong', { class: 'mono', text: JSON.stringify(typeof ex.value === 'bigint' ? ex.value.toString() : ex.value) }), ex.categorical_index !== null && ex.categorical_index !== undefined ? ` → index ${ex.categorical_index}` : '', ' → ', swatch(ex.shards[0]), el('strong', { text: `shard ${ex.shards[0]}` })),
    );
    if (m.routing_values) {
      box.append(el('div', { class: 'routing-values' }, ...m.routing_values.map((v, i) => el('span', { class: i === ex.categorical_index ? 'hit' : '', text: `${i}: ${JSON.stringify(v)}` }))));
    }
  }
}

// ---- rendering: map --------------------------------------------------------------------

let scale = null;

function renderMap() {
  const map = $('#map');
  map.replaceChildren();
  const pts = state.samples.map((s) => state.pca.project(s.v));
  const cps = state.centroids.map((c) => state.pca.project(c));
  const qps = state.queries.map((q) => state.pca.project(q.query));
  const all = [...pts, ...cps, ...qps];
  const xs = all.map((p) => p[0]);
  const ys = all.map((p) => p[1]);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  const [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  const k = Math.min((W - 2 * PAD) / (x1 - x0 || 1), (H - 2 * PAD) / (y1 - y0 || 1));
  const cx = (W - k * (x1 - x0)) / 2;
  const cy = (H - k * (y1 - y0)) / 2;
  scale = (p) => [cx + k * (p[0] - x0), H - (cy + k * (p[1] - y0))];

  const [ox, oy] = scale([0, 0].map((_, i) => (i === 0 ? (x0 + x1) / 2 : (y0 + y1) / 2)));
  map.append(svg('line', { class: 'axis', x1: PAD / 2, y1: oy, x2: W - PAD / 2, y2: oy }), svg('line', { class: 'axis', x1: ox, y1: PAD / 2, x2: ox, y2: H - PAD / 2 }));
  const ex = state.pca.explained;
  const axisLabel = (text, x, y, anchor) => {
    const t = svg('text', { class: 'axis-label', x, y, 'text-anchor': anchor });
    t.textContent = text;
    return t;
  };
  map.append(axisLabel(`PC1 (${(100 * ex[0]).toFixed(0)}% of variance)`, W - PAD / 2, oy - 6, 'end'), axisLabel(`PC2 (${(100 * ex[1]).toFixed(0)}%)`, ox + 6, PAD / 2 + 8, 'start'));
  $('#pca-note').textContent = `of ${state.centroids.length ? 'centroids and ' : ''}${state.samples.length} sample vectors`;

  const gPts = svg('g', { id: 'points' });
  state.samples.forEach((s, i) => {
    const [x, y] = scale(pts[i]);
    gPts.append(svg('circle', { class: 'pt', cx: x.toFixed(1), cy: y.toFixed(1), r: 3.2, fill: s.shard === null ? '#98a2b3' : color(s.shard), 'data-i': i, 'data-shard': s.shard ?? '' }));
  });
  map.append(gPts);

  const gRec = svg('g', { id: 'recorded' });
  state.queries.forEach((q, i) => {
    const [x, y] = scale(qps[i]);
    const r = q.route ?? q.args?.shard_ids;
    gRec.append(svg('circle', { class: 'recorded', cx: x.toFixed(1), cy: y.toFixed(1), r: 4.5, stroke: r ? color(r[0]) : '#667085', 'data-q': i }));
  });
  map.append(gRec);
  map.append(svg('g', { id: 'links' }));

  const gC = svg('g', { id: 'centroids' });
  state.centroids.forEach((c, s) => {
    const [x, y] = scale(cps[s]);
    const g = svg('g', { class: 'centroid-g', 'data-shard': s });
    g.append(svg('path', { class: 'centroid', d: `M${x} ${y - 12}L${x + 12} ${y}L${x} ${y + 12}L${x - 12} ${y}Z`, fill: color(s), 'data-c': s }));
    const t = svg('text', { class: 'clabel', x, y: y + 4, 'text-anchor': 'middle' });
    t.textContent = String(s);
    g.append(t);
    gC.append(g);
  });
  map.append(gC);
  map.append(svg('g', { id: 'query-marker' }));
  renderLegend();
}

function renderLegend() {
  const lg = $('#legend');
  lg.replaceChildren();
  const item = (shape, text) => {
    const s = document.createElementNS(SVG_NS, 'svg');
    s.setAttribute('width', '14');
    s.setAttribute('height', '14');
    s.append(shape);
    return el('span', {}, s, text);
  };
  const seen = new Set(state.samples.map((s) => s.shard).filter((s) => s !== null));
  for (const c of state.centroids.keys()) seen.add(c);
  for (const s of [...seen].sort((a, b) => a - b)) lg.append(item(svg('circle', { cx: 7, cy: 7, r: 5, fill: color(s) }), `shard ${s}`));
  if (state.centroids.length) lg.append(item(svg('path', { d: 'M7 1L13 7L7 13L1 7Z', fill: '#667085' }), 'centroid'));
  if (state.queries.length) lg.append(item(svg('circle', { cx: 7, cy: 7, r: 4.5, fill: '#fff', stroke: '#667085', 'stroke-width': 2 }), 'recorded query'));
  lg.append(item(svg('path', { d: 'M7 0L8.8 5.2L14 5.4L9.9 8.6L11.3 14L7 11L2.7 14L4.1 8.6L0 5.4L5.2 5.2Z', fill: '#111827' }), 'query'));
  if (!seen.size) lg.append(el('span', { class: 'hint', text: `vectors do not decide ${state.snap.strategy.toUpperCase()} routing` }));
}

function highlight() {
  const probed = new Set(state.probed);
  const probeRank = new Map(state.probed.map((s, i) => [s, i]));
  for (const tr of document.querySelectorAll('#shard-table tbody tr')) {
    const s = Number(tr.dataset.shard);
    tr.classList.toggle('probed', probed.has(s));
    const cell = tr.querySelector('.probe');
    cell.replaceChildren(probed.has(s) ? el('span', { class: 'probe-badge', text: `#${probeRank.get(s) + 1}` }) : '');
  }
  const byShard = state.snap.strategy === 'cluster' || state.snap.strategy === 'lsh';
  for (const c of document.querySelectorAll('#points .pt')) {
    const s = c.dataset.shard === '' ? null : Number(c.dataset.shard);
    c.classList.toggle('dim', byShard && probed.size > 0 && !probed.has(s));
  }
  for (const g of document.querySelectorAll('#centroids .centroid')) g.classList.toggle('probed', probed.has(Number(g.dataset.c)));
  if (!scale) return;
  const [qx, qy] = scale(state.pca.project(state.query));
  const links = $('#links');
  links.replaceChildren();
  if (state.explanation?.kind === 'cluster') {
    state.probed.forEach((s, r) => {
      const [x, y] = scale(state.pca.project(state.centroids[s]));
      links.append(svg('line', { class: 'link', x1: qx, y1: qy, x2: x, y2: y }));
      const t = svg('text', { class: 'link-label', x: (qx + x) / 2, y: (qy + y) / 2 - 3, 'text-anchor': 'middle' });
      t.textContent = `#${r + 1}`;
      links.append(t);
    });
  }
  const qm = $('#query-marker');
  qm.replaceChildren();
  const star = [];
  for (let i = 0; i < 10; i++) {
    const r = i % 2 ? 5 : 12;
    const a = -Math.PI / 2 + (i * Math.PI) / 5;
    star.push(`${(qx + r * Math.cos(a)).toFixed(1)},${(qy + r * Math.sin(a)).toFixed(1)}`);
  }
  qm.append(svg('polygon', { points: star.join(' '), fill: '#111827', stroke: '#fff', 'stroke-width': 1.5, 'data-query': '1' }));
}

// ---- tooltip and clicks on the map ------------------------------------------------------

function tooltipFor(target) {
  if (target.dataset.i !== undefined) {
    const s = state.samples[Number(target.dataset.i)];
    return `<b>sample vector</b><br>${s.shard === null ? 'routing does not depend on the vector' : `routes to shard <b>${s.shard}</b>`}<br>distance to query: ${fmt(dist(s.v, state.query))}<br><i>click: make it the query</i>`;
  }
  if (target.dataset.c !== undefined) {
    const c = Number(target.dataset.c);
    const sh = state.shards[c];
    const ex = state.explanation;
    const rank = ex?.kind === 'cluster' ? ex.ranking.indexOf(c) + 1 : null;
    return `<b>centroid of shard ${c}</b><br>${sh.vector_count.toLocaleString('en')} vectors${ex?.kind === 'cluster' ? `<br>routing distance ${fmt(ex.distances[c], 6)} (rank ${rank})` : ''}${state.probed.includes(c) ? '<br><b>probed</b>' : ''}<br><i>click: make it the query</i>`;
  }
  if (target.dataset.q !== undefined) {
    const q = state.queries[Number(target.dataset.q)];
    return `<b>recorded query #${target.dataset.q}</b><br>args ${escapeHtml(JSON.stringify(q.args ?? {}))}${q.route ? `<br>recorded route [${q.route}]` : ''}<br><i>click: select it</i>`;
  }
  if (target.dataset.query) return `<b>the query</b><br>probes ${state.probed.length ? state.probed.join(', ') : '—'}`;
  if (target.dataset.tip) return escapeHtml(target.dataset.tip);
  return null;
}

function escapeHtml(s) {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
}

function wireMap() {
  const map = $('#map');
  const tip = $('#tooltip');
  const wrap = map.parentElement;
  const show = (e) => {
    const html = tooltipFor(e.target);
    if (!html) {
      tip.hidden = true;
      return;
    }
    tip.innerHTML = html;
    tip.hidden = false;
    const r = wrap.getBoundingClientRect();
    let x = e.clientX - r.left + 14;
    const y = e.clientY - r.top + 14;
    if (x + 240 > r.width) x = e.clientX - r.left - 250;
    tip.style.left = `${x}px`;
    tip.style.top = `${y}px`;
  };
  map.addEventListener('mousemove', show);
  map.addEventListener('mouseleave', () => (tip.hidden = true));
  map.addEventListener('click', (e) => {
    const t = e.target;
    if (t.dataset.i !== undefined) setQuery(state.samples[Number(t.dataset.i)].v);
    else if (t.dataset.c !== undefined) setQuery(state.centroids[Number(t.dataset.c)]);
    else if (t.dataset.q !== undefined) {
      selectRecorded(Number(t.dataset.q));
      $('#recorded-query').value = t.dataset.q;
    }
  });
  document.addEventListener('mousemove', (e) => {
    if (e.target.closest?.('.bits')) show(e);
    else if (!e.target.closest?.('#map')) tip.hidden = true;
  });
}

// ---- state changes (also the test hook) ------------------------------------------------

function setQuery(v) {
  const q = Float32Array.from(v);
  if (q.length !== state.snap.dim) throw new Error(`query has dimension ${q.length}, the snapshot has dimension ${state.snap.dim}`);
  state.query = q;
  state.recordedIndex = -1;
  $('#recorded-query').value = '-1';
  update();
}

function setNumProbes(n) {
  state.numProbes = Number(n);
  $('#num-probes').value = String(n);
  $('#num-probes-value').textContent = String(n);
  update();
}

function setShardIds(ids) {
  state.shardIds = ids.map(Number);
  $('#shard-ids').value = state.shardIds.join(', ');
  update();
}

function setRoutingContext(ctx) {
  state.routingContext = ctx;
  $('#routing-context').value = JSON.stringify(ctx, null, 1);
  $('#context-error').textContent = '';
  update();
}

function randomQuery() {
  const rand = Math.random;
  const base = state.samples.length ? state.samples[Math.floor(rand() * state.samples.length)].v : new Float32Array(state.snap.dim);
  setQuery(base.map((x) => x + gaussian(rand) * 0.05 * (Math.abs(x) + 0.1)));
}

// ---- live search ---------------------------------------------------------------------------

async function search() {
  const out = $('#search-output');
  const host = $('#host-url').value.trim().replace(/\/+$/, '');
  if (!host) {
    out.replaceChildren(el('div', { class: 'error', text: 'Set the host URL of a shardvec host server first (e.g. http://127.0.0.1:8080).' }));
    return;
  }
  const body = { query: Array.from(state.query), top_k: Number($('#top-k').value) || 10 };
  const o = routeOptions();
  if (o.numProbes !== undefined) body.num_probes = o.numProbes;
  if (o.shardIds !== undefined) body.shard_ids = o.shardIds;
  if (o.routingContext !== undefined) body.routing_context = o.routingContext;
  const url = `${host}/v1/search`;
  out.replaceChildren(el('p', { class: 'hint', text: `POST ${url} …` }));
  $('#search-button').disabled = true;
  try {
    const t0 = performance.now();
    const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const text = await r.text();
    if (!r.ok) throw new Error(`HTTP ${r.status} ${r.statusText}${text ? `: ${text.slice(0, 300)}` : ''}`);
    let doc;
    try {
      doc = JSON.parse(text);
    } catch {
      throw new Error(`the answer is not JSON: ${text.slice(0, 120)}`);
    }
    const results = Array.isArray(doc) ? doc : doc.results;
    if (!Array.isArray(results)) throw new Error('the answer has no `results` array');
    const ms = performance.now() - t0;
    const table = el('table', {}, el('thead', {}, el('tr', {}, el('th', { text: '#' }), el('th', { text: 'id' }), el('th', { class: 'num', text: 'score' }), el('th', { text: 'shard' }), el('th', { text: 'payload' }))));
    const tb = el('tbody');
    results.forEach((h, i) =>
      tb.append(
        el(
          'tr',
          {},
          el('td', { text: String(i + 1) }),
          el('td', { class: 'mono', text: String(h.id) }),
          el('td', { class: 'num', text: fmt(h.score, 6) }),
          el('td', {}, h.shard !== undefined && h.shard !== null ? [swatch(h.shard), String(h.shard)] : '—'),
          el('td', { class: 'payload', title: JSON.stringify(h.payload ?? null), text: h.payload === undefined || h.payload === null ? '—' : JSON.stringify(h.payload) }),
        ),
      ),
    );
    table.append(tb);
    const queried = doc.num_shards_queried !== undefined ? ` from ${doc.num_shards_queried} shard(s)` : '';
    out.replaceChildren(el('p', { class: 'hint', text: `${results.length} results${queried} in ${ms.toFixed(0)} ms` }), table);
  } catch (e) {
    const msg = e instanceof TypeError ? `${e.message} — is a shardvec host server running at ${host} (and does it allow this page's origin)?` : e.message;
    out.replaceChildren(el('div', { class: 'error', role: 'alert', text: `Search failed: POST ${url}: ${msg}` }));
  } finally {
    $('#search-button').disabled = false;
  }
}

// ---- wiring -----------------------------------------------------------------------------------

function wire() {
  $('#load-form').addEventListener('submit', (e) => {
    e.preventDefault();
    loadSnapshot($('#snapshot-url').value.trim(), $('#queries-url').value.trim() || undefined).catch(() => {});
  });
  $('#num-probes').addEventListener('input', (e) => setNumProbes(Number(e.target.value)));
  $('#random-query').addEventListener('click', randomQuery);
  $('#recorded-query').addEventListener('change', (e) => {
    const i = Number(e.target.value);
    if (i >= 0) selectRecorded(i);
  });
  $('#shard-ids').addEventListener('change', (e) => {
    const ids = e.target.value.split(/[\s,]+/).filter(Boolean).map(Number);
    setShardIds(ids);
  });
  $('#apply-context').addEventListener('click', () => {
    try {
      const ctx = JSON.parse($('#routing-context').value);
      setRoutingContext(ctx);
    } catch (e) {
      $('#context-error').textContent = `Not valid JSON: ${e.message}`;
    }
  });
  $('#apply-query').addEventListener('click', () => {
    try {
      const v = JSON.parse($('#query-vector').value);
      if (!Array.isArray(v)) throw new Error('expected a JSON array of numbers');
      setQuery(v);
      $('#query-error').textContent = '';
    } catch (e) {
      $('#query-error').textContent = e.message;
    }
  });
  $('#search-form').addEventListener('submit', (e) => {
    e.preventDefault();
    search();
  });
  wireMap();
}

/** The origin, when this page is served by a shardvec host (`shardvec
 * serve --demo-dir`, at /demo/); otherwise null. */
async function servingHost() {
  if (!location.pathname.startsWith('/demo/') || !location.protocol.startsWith('http')) return null;
  try {
    const r = await fetch(`${location.origin}/v1/snapshot`);
    return r.ok && typeof (await r.json()).manifest_ref === 'string' ? location.origin : null;
  } catch {
    return null;
  }
}

const ready = (async () => {
  wire();
  await loadWasm();
  const params = new URLSearchParams(location.search);
  const snapshot = params.get('snapshot');
  const host = params.get('host') ?? (snapshot ? null : await servingHost());
  if (host) {
    await loadSnapshot(host, params.get('queries') || undefined, true).catch(() => {});
  } else if (snapshot) {
    $('#snapshot-url').value = snapshot;
    await loadSnapshot(snapshot, params.get('queries') || undefined).catch(() => {});
  } else {
    document.body.dataset.state = 'idle';
    setStatus('', 'Enter the URL of a snapshot (the folder that holds its _CURRENT) and press Load.');
  }
})();

/** Test and console hook. */
window.demo = {
  ready,
  load: (url, queriesUrl) => loadSnapshot(url, queriesUrl),
  setQuery,
  setNumProbes,
  setShardIds,
  setRoutingContext,
  selectRecorded,
  get probed() {
    return state.probed.slice();
  },
  get explanation() {
    return state.explanation;
  },
  get snapshot() {
    return state.snap;
  },
};
