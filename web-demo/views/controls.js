// The query card: shows the current query and routing options in its
// controls (num_probes slider, shard_ids, routing_context, recorded-query
// picker, query vector). Their events are wired in app.js.

import { $, el } from '../dom.js';
import { state } from '../state.js';

export function renderQueryControls() {
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
  showQueryVector();
  $('#context-error').textContent = '';
  $('#query-error').textContent = '';
}

/** The current query in the query-vector editor. */
export function showQueryVector() {
  $('#query-vector').value = JSON.stringify(Array.from(state.query));
}
