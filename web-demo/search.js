// Live search through a shardvec host server: posts the current query,
// routing options, payload filter and min_results to `{host}/v1/search` and
// lists the merged results in `#search-output` — with the shard each came
// from (`shard_id`) and whether it matches the filter in the box (checked
// in the page by the wasm package) — or a visible error. An invalid filter
// is refused in the page, before any request.

import { swatch } from './colors.js';
import { $, el, fmt } from './dom.js';
import { currentFilter, hitMatches, renderFilterExamples, showFilterState } from './filter.js';
import { routeOptions } from './routing.js';
import { state } from './state.js';

function fail(text) {
  state.lastSearch = null;
  $('#search-output').replaceChildren(el('div', { class: 'error', role: 'alert', text }));
}

export async function search() {
  const out = $('#search-output');
  const host = $('#host-url').value.trim().replace(/\/+$/, '');
  if (!host) {
    fail('Set the host URL of a shardvec host server first (e.g. http://127.0.0.1:8080).');
    return;
  }
  // The core's parser, in the page: a bad filter never leaves it.
  const f = showFilterState();
  if (f.error) {
    fail(`Invalid filter (nothing was sent): ${f.error}`);
    return;
  }
  const body = { query: Array.from(state.query), top_k: Number($('#top-k').value) || 10 };
  const o = routeOptions();
  if (o.numProbes !== undefined) body.num_probes = o.numProbes;
  if (o.shardIds !== undefined) body.shard_ids = o.shardIds;
  if (o.routingContext !== undefined) body.routing_context = o.routingContext;
  if (f.filter) body.filter = f.filter;
  const min = $('#min-results').value.trim();
  if (min !== '') body.min_results = Number(min);
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
    state.lastSearch = { doc, results, sent: body.filter ?? null, ms: performance.now() - t0 };
    // Payloads seen feed the example filters when nothing was recorded.
    const hadExamples = state.seenHits.length > 0;
    state.seenHits.push(...results.filter((h) => h.payload && typeof h.payload === 'object'));
    if (!hadExamples && state.seenHits.length) renderFilterExamples();
    renderResults();
  } catch (e) {
    const msg = e instanceof TypeError ? `${e.message} — is a shardvec host server running at ${host} (and does it allow this page's origin)?` : e.message;
    fail(`Search failed: POST ${url}: ${msg}`);
  } finally {
    $('#search-button').disabled = false;
  }
}

/** The last results, with a mark per hit for the filter now in the box
 * (re-drawn when the box changes). */
export function renderResults() {
  const last = state.lastSearch;
  if (!last) return;
  const { doc, results, sent, ms } = last;
  const box = currentFilter();
  const head = el(
    'tr',
    {},
    el('th', { text: '#' }),
    el('th', { text: 'id' }),
    el('th', { class: 'num', text: 'score' }),
    el('th', { text: 'shard' }),
    el('th', { class: 'mark', text: 'filter', title: 'Whether the hit matches the filter in the box, checked in this page by shardvec-wasm (Snapshot.filterMatches)' }),
    el('th', { text: 'payload' }),
  );
  const tb = el('tbody');
  results.forEach((h, i) => {
    const shard = h.shard_id ?? h.shard;
    let mark;
    if (box.error) mark = el('td', { class: 'mark unknown', title: 'the filter in the box is invalid', text: '?' });
    else if (!box.filter) mark = el('td', { class: 'mark none', title: 'no filter', text: '—' });
    else {
      const ok = hitMatches(box.filter, h);
      mark = el('td', { class: `mark ${ok ? 'yes' : 'no'}`, 'data-matches': String(ok), title: ok ? 'matches the filter' : 'does not match the filter', text: ok ? '✓' : '✗' });
    }
    tb.append(
      el(
        'tr',
        { 'data-shard': shard ?? '' },
        el('td', { text: String(i + 1) }),
        el('td', { class: 'mono', text: String(h.id) }),
        el('td', { class: 'num', text: fmt(h.score, 6) }),
        el('td', { class: 'shard' }, shard !== undefined && shard !== null ? [swatch(shard), String(shard)] : '—'),
        mark,
        el('td', { class: 'payload', title: JSON.stringify(h.payload ?? null), text: h.payload === undefined || h.payload === null ? '—' : JSON.stringify(h.payload) }),
      ),
    );
  });
  const queried = doc.num_shards_queried !== undefined ? ` from ${doc.num_shards_queried} shard(s)` : '';
  const lines = [el('p', { class: 'hint', text: `${results.length} results${queried} in ${ms.toFixed(0)} ms${sent ? ` · filter ${JSON.stringify(sent)}` : ''}` })];
  const p = doc.probing;
  if (p) {
    const why = { enough: 'enough found', probe_limit: 'max_probes reached', all_shards: 'every shard probed' }[p.stop] ?? p.stop;
    lines.push(el('p', { id: 'probing', class: 'hint', 'data-stop': p.stop, text: `min_results ${p.min_results}: ${p.found} found in ${p.shards_probed} shard(s) (${doc.route?.join(', ') ?? ''}) — ${why}` }));
  }
  $('#search-output').replaceChildren(...lines, el('table', {}, el('thead', {}, head), tb));
}

document.addEventListener('filterchange', renderResults);
