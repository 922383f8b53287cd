// The payload filter of the live search: the JSON box, checked as you type
// with the wasm package's parser (`Snapshot.parseFilter`, the core's, so an
// invalid filter is refused in the page with the message a host would
// give, and no request is made), example filters built from the payloads
// the page has seen (the recorded queries' results, else the first search
// results), and whether a hit matches the filter in the box
// (`Snapshot.filterMatches`, the core's evaluator).

import { $, el } from './dom.js';
import { state } from './state.js';

/**
 * The filter in the box: `{filter: null}` when the box is empty,
 * `{filter}` (its canonical JSON, as hosts and the edge client use it)
 * when it parses, `{error}` (the core's message) when it does not.
 */
export function currentFilter() {
  const text = $('#filter').value.trim();
  if (!text) return { filter: null };
  try {
    return { filter: state.wasm.Snapshot.parseFilter(text) };
  } catch (e) {
    return { error: e.message };
  }
}

/** Shows the box's state under it (the core's error, or nothing). */
export function showFilterState() {
  const f = currentFilter();
  $('#filter').classList.toggle('invalid', Boolean(f.error));
  $('#filter-error').textContent = f.error ? `Invalid filter — ${f.error}` : '';
  return f;
}

/** Whether the hit matches `filter` (canonical JSON), by the core. */
export function hitMatches(filter, hit) {
  return state.wasm.Snapshot.filterMatches(filter, hit.id, hit.payload ?? null);
}

// ---- examples ------------------------------------------------------------------------

const isScalar = (v) => v === null || ['string', 'number', 'boolean'].includes(typeof v);

/** Hits with payloads the page knows: the recorded queries' results, else
 * the results of the searches made so far. */
function knownHits() {
  const recorded = state.queries.flatMap((q) => (Array.isArray(q.results) ? q.results : []));
  return (recorded.length ? recorded : state.seenHits).filter((h) => h && typeof h.payload === 'object' && h.payload !== null);
}

/** The most frequent of `values` (first seen wins ties). */
function mostFrequent(values) {
  const counts = new Map();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  let best;
  for (const [v, n] of counts) if (best === undefined || n > counts.get(best)) best = v;
  return best;
}

/** Example filters over the payload fields of `hits` (scalar fields one
 * object deep, as dotted paths for nested objects), and over their ids. */
export function exampleFilters(hits = knownHits()) {
  const fields = new Map(); // path -> values
  const visit = (obj, prefix, depth) => {
    for (const [k, v] of Object.entries(obj)) {
      const p = prefix ? `${prefix}.${k}` : k;
      if (isScalar(v) && v !== null) {
        if (!fields.has(p)) fields.set(p, []);
        fields.get(p).push(v);
      } else if (v && typeof v === 'object' && !Array.isArray(v) && depth < 1) visit(v, p, depth + 1);
    }
  };
  for (const h of hits) visit(h.payload, '', 0);
  const strings = [...fields].filter(([, vs]) => vs.every((v) => typeof v === 'string'));
  const numbers = [...fields].filter(([, vs]) => vs.every((v) => typeof v === 'number'));
  const out = [];
  const [s1, s2] = strings;
  // A low-cardinality number (a label) is an equality; a wide one a range.
  const distinct = (vs) => new Set(vs).size;
  const label = numbers.find(([, vs]) => distinct(vs) <= Math.max(3, vs.length / 4));
  const range = numbers.find(([p, vs]) => p !== label?.[0] && distinct(vs) > 3);
  if (s1) out.push({ [s1[0]]: mostFrequent(s1[1]) });
  if (range) {
    const sorted = [...range[1]].sort((a, b) => a - b);
    const lo = sorted[Math.floor(sorted.length / 4)];
    const hi = sorted[Math.floor((sorted.length * 3) / 4)];
    if (lo < hi) out.push({ [range[0]]: { $gte: lo, $lt: hi } });
  }
  if (s1 && label) out.push({ [s1[0]]: mostFrequent(s1[1]), [label[0]]: mostFrequent(label[1]) });
  if (s1 && new Set(s1[1]).size > 1) {
    const [a, b] = [...new Set(s1[1])];
    const second = s2 ? { [s2[0]]: mostFrequent(s2[1]) } : label ? { [label[0]]: { $ne: mostFrequent(label[1]) } } : { [s1[0]]: b };
    out.push({ $or: [{ [s1[0]]: { $in: [a, b] } }, second] });
  }
  // (Ids past 2^53 arrive as BigInts, which JSON cannot spell.)
  const ids = [...new Set(hits.map((h) => h.id).filter((id) => typeof id !== 'bigint'))].slice(0, 3);
  if (ids.length) out.push({ $id: { $in: ids } });
  // Only filters the core accepts (all of these should be).
  return out.filter((f) => {
    try {
      state.wasm.Snapshot.parseFilter(f);
      return true;
    } catch {
      return false;
    }
  });
}

/** Shows the example filters as buttons that fill the box. */
export function renderFilterExamples() {
  const box = $('#filter-examples');
  const examples = exampleFilters();
  if (!examples.length) {
    box.replaceChildren(el('span', { class: 'hint', text: 'Examples appear once the page has seen payloads (recorded queries, or a first search).' }));
    return;
  }
  const source = state.queries.some((q) => Array.isArray(q.results) && q.results.length) ? 'from the recorded results’ payloads' : 'from the results’ payloads';
  box.replaceChildren(
    el('span', { class: 'hint', text: `Examples ${source}:` }),
    ...examples.map((f) => {
      const text = JSON.stringify(f);
      return el('button', {
        type: 'button',
        class: 'chip mono',
        'data-filter': text,
        text,
        onclick: () => {
          $('#filter').value = text;
          onFilterInput();
        },
      });
    }),
  );
}

/** After the box changed: its state, and the match marks of the results
 * shown (they follow the box). */
export function onFilterInput() {
  showFilterState();
  document.dispatchEvent(new CustomEvent('filterchange'));
}
