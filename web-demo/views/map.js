// The PCA map (`#map`): sample vectors, recorded queries and centroids on the
// two principal axes, coloured by shard, with its legend; the query (a star),
// the probed centroids and links to them; and the map's tooltip and clicks.

import { color } from '../colors.js';
import { $, SVG_NS, el, escapeHtml, fmt, svg } from '../dom.js';
import { dist } from '../pca.js';
import { state } from '../state.js';

// The map's viewBox (index.html) and its inner margin.
const W = 720;
const H = 540;
const PAD = 34;

// Projected coordinates → map coordinates; set by renderMap.
let scale = null;

export function renderMap() {
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

/** Dims the samples of shards not probed, marks the probed centroids, links
 * the query to them (CLUSTER) and draws the query. */
export function highlightMap() {
  const probed = new Set(state.probed);
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

/** The tooltip over the map (and over the LSH bits of the decision card,
 * which carry a `data-tip`); clicks on a sample or a centroid call
 * `onVector(v)`, on a recorded query `onRecorded(i)`. */
export function wireMap({ onVector, onRecorded }) {
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
    if (t.dataset.i !== undefined) onVector(state.samples[Number(t.dataset.i)].v);
    else if (t.dataset.c !== undefined) onVector(state.centroids[Number(t.dataset.c)]);
    else if (t.dataset.q !== undefined) onRecorded(Number(t.dataset.q));
  });
  document.addEventListener('mousemove', (e) => {
    if (e.target.closest?.('.bits')) show(e);
    else if (!e.target.closest?.('#map')) tip.hidden = true;
  });
}
