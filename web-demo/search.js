// Live search through a shardvec host server: posts the current query and
// routing options to `{host}/v1/search` and lists the merged results (with
// the shard each came from) in `#search-output`, or a visible error.

import { swatch } from './colors.js';
import { $, el, fmt } from './dom.js';
import { routeOptions } from './routing.js';
import { state } from './state.js';

export async function search() {
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
