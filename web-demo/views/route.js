// The routing decision card: which shards the query probes (`#probed`, and
// whether that agrees with the recorded route) and why (`#decision`: CLUSTER
// distances and ranking, LSH bits and buckets, the CEL value, the EXPLICIT
// shard ids, or the core's error).

import { swatch } from '../colors.js';
import { $, el, fmt } from '../dom.js';
import { state } from '../state.js';

/** The probed shards line, and the agreement badge of a recorded query. */
export function renderProbed() {
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
}

/** Whether the current options are those of the recorded query `args`. */
function sameArgs(args) {
  const s = state.snap.strategy;
  if (args.shard_ids) return s === 'explicit' && JSON.stringify(args.shard_ids) === JSON.stringify(state.shardIds);
  if (s === 'cel') return JSON.stringify(args.routing_context) === JSON.stringify(state.routingContext);
  const p = args.num_probes ?? state.snap.defaultProbes;
  return Math.min(p, state.snap.numDbs) === state.numProbes;
}

export function renderDecision() {
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
