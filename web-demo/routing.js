// The current query and its routing options: the state changes behind the
// query controls, the map's clicks and the `window.demo` hook, and `update`,
// which routes the query with the snapshot (`explain`) and redraws everything
// that shows the decision.

import { $ } from './dom.js';
import { gaussian } from './pca.js';
import { state } from './state.js';
import { renderQueryControls, showQueryVector } from './views/controls.js';
import { highlightMap } from './views/map.js';
import { renderDecision, renderProbed } from './views/route.js';
import { highlightShards } from './views/shards.js';

/** The options of a freshly loaded snapshot: its default probes, shard 0,
 * a routing context of the right types, and its first recorded query (or a
 * sample vector) as the query. */
export function resetQueryDefaults() {
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

export function selectRecorded(i, rerender = true) {
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

/** The routing options of the current strategy, as `route`/`explain` and the
 * host's /v1/search take them. */
export function routeOptions() {
  const s = state.snap.strategy;
  const o = {};
  if (s === 'cluster' || s === 'lsh') o.numProbes = state.numProbes;
  if (s === 'explicit') o.shardIds = state.shardIds;
  if (s === 'cel') o.routingContext = state.routingContext;
  return o;
}

/** Routes the current query and shows the decision everywhere. */
export function update() {
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
  renderProbed();
  showQueryVector();
  renderDecision();
  highlightShards();
  highlightMap();
}

export function setQuery(v) {
  const q = Float32Array.from(v);
  if (q.length !== state.snap.dim) throw new Error(`query has dimension ${q.length}, the snapshot has dimension ${state.snap.dim}`);
  state.query = q;
  state.recordedIndex = -1;
  $('#recorded-query').value = '-1';
  update();
}

export function setNumProbes(n) {
  state.numProbes = Number(n);
  $('#num-probes').value = String(n);
  $('#num-probes-value').textContent = String(n);
  update();
}

export function setShardIds(ids) {
  state.shardIds = ids.map(Number);
  $('#shard-ids').value = state.shardIds.join(', ');
  update();
}

export function setRoutingContext(ctx) {
  state.routingContext = ctx;
  $('#routing-context').value = JSON.stringify(ctx, null, 1);
  $('#context-error').textContent = '';
  update();
}

export function randomQuery() {
  const rand = Math.random;
  const base = state.samples.length ? state.samples[Math.floor(rand() * state.samples.length)].v : new Float32Array(state.snap.dim);
  setQuery(base.map((x) => x + gaussian(rand) * 0.05 * (Math.abs(x) + 0.1)));
}
