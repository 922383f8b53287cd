// The shard table (`#shard-table`): one row per shard with its vector count,
// location and checkpoint; the rows of the probed shards are highlighted with
// their probe rank.

import { swatch } from '../colors.js';
import { $, el } from '../dom.js';
import { state } from '../state.js';

export function renderShardTable() {
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

/** Marks the rows of `state.probed`, with each one's probe rank. */
export function highlightShards() {
  const probed = new Set(state.probed);
  const probeRank = new Map(state.probed.map((s, i) => [s, i]));
  for (const tr of document.querySelectorAll('#shard-table tbody tr')) {
    const s = Number(tr.dataset.shard);
    tr.classList.toggle('probed', probed.has(s));
    const cell = tr.querySelector('.probe');
    cell.replaceChildren(probed.has(s) ? el('span', { class: 'probe-badge', text: `#${probeRank.get(s) + 1}` }) : '');
  }
}
