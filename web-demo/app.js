// shardvec routing explorer: loads a snapshot with the shardvec-wasm package
// (`Snapshot.open`), shows its shards, a PCA projection of its centroids and
// of sample vectors coloured by the shard they route to, and explains the
// routing decision for a query. Served by a shardvec host (`shardvec serve
// --demo-dir web-demo`, at /demo/) it loads the host's snapshot
// (`Snapshot.fromHost`) and searches on it. Plain ES modules, no build step beyond
// the package's (`./pkg/` is the package built for wasm-bindgen's `--target web`).
//
// This module is the entry point (index.html loads it): it loads a snapshot
// into the page, wires the controls, and starts. The rest:
//   snapshot-source.js  the wasm package, snapshot URL / host, recorded queries, URL parameters
//   state.js            the shared page state
//   samples.js          the sample vectors drawn on the map
//   routing.js          the current query and options, routing it (`update`)
//   search.js           live search through a host server
//   filter.js           its payload filter: checked by the wasm parser, examples, match marks
//   views/info.js       the snapshot card
//   views/shards.js     the shard table
//   views/controls.js   the query controls
//   views/map.js        the PCA map, its tooltip and clicks
//   views/route.js      the probed shards and why
//   dom.js, colors.js   DOM helpers, shard colours; pca.js: numeric helpers
//
// Test hook: `window.demo` (see the end of this file).

import { $, setStatus } from './dom.js';
import { currentFilter, exampleFilters, onFilterInput, renderFilterExamples } from './filter.js';
import { pca2 } from './pca.js';
import { randomQuery, resetQueryDefaults, selectRecorded, setNumProbes, setQuery, setRoutingContext, setShardIds, update } from './routing.js';
import { makeSamples } from './samples.js';
import { search } from './search.js';
import { absoluteUrl, fetchRecordedQueries, initialSource, loadWasm, openSnapshot, rememberInLocation, rows } from './snapshot-source.js';
import { state } from './state.js';
import { renderQueryControls } from './views/controls.js';
import { renderInfo } from './views/info.js';
import { renderMap, wireMap } from './views/map.js';
import { renderShardTable } from './views/shards.js';

// ---- loading -----------------------------------------------------------------------

/** Loads the snapshot at `url`, and recorded queries from `queriesUrl`
 * (default: `<url>.json`, silently skipped when absent). With `viaHost`,
 * `url` is a shardvec host: the snapshot comes from its routing files
 * (`Snapshot.fromHost`) and live search goes to it. */
async function loadSnapshot(url, queriesUrl, viaHost = false) {
  const abs = absoluteUrl(url);
  document.body.dataset.state = 'loading';
  $('#load-button').disabled = true;
  setStatus('', `Loading ${abs} …`);
  try {
    const t0 = performance.now();
    const snap = await openSnapshot(abs, viaHost);
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
      state.queries = await fetchRecordedQueries(qUrl, snap.dim);
    } catch (e) {
      if (queriesUrl) setStatus('error', `Recorded queries: ${e.message}`);
    }
    state.lastSearch = null;
    state.seenHits = [];
    makeSamples();
    state.pca = pca2([...state.centroids, ...state.samples.map((s) => s.v), ...state.queries.map((q) => q.query)]);
    resetQueryDefaults();
    $('#snapshot-url').value = viaHost ? '' : abs;
    if (viaHost) $('#host-url').value = abs;
    if (queriesUrl) $('#queries-url').value = queriesUrl;
    rememberInLocation(abs, queriesUrl, viaHost);
    $('#app').hidden = false;
    renderInfo();
    renderShardTable();
    renderQueryControls();
    renderMap();
    update();
    renderFilterExamples();
    onFilterInput();
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
  $('#filter').addEventListener('input', onFilterInput);
  $('#search-form').addEventListener('submit', (e) => {
    e.preventDefault();
    search();
  });
  wireMap({
    onVector: setQuery,
    onRecorded: (i) => {
      selectRecorded(i);
      $('#recorded-query').value = String(i);
    },
  });
}

const ready = (async () => {
  wire();
  await loadWasm();
  const { host, snapshot, queries } = await initialSource();
  if (host) {
    await loadSnapshot(host, queries, true).catch(() => {});
  } else if (snapshot) {
    $('#snapshot-url').value = snapshot;
    await loadSnapshot(snapshot, queries).catch(() => {});
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
  /** The filter in the box: {filter} (canonical), {filter: null} or {error}. */
  get filter() {
    return currentFilter();
  },
  /** The example filters offered. */
  get filterExamples() {
    return exampleFilters();
  },
};
