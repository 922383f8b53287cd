// The colour of each shard, used alike by the shard table, the map, the
// routing decision and the search results.

import { el } from './dom.js';

// Tableau 10, then generated hues for larger snapshots.
const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];
export const color = (shard) =>
  shard < PALETTE.length ? PALETTE[shard] : `hsl(${(shard * 137.508) % 360} 55% 52%)`;

/** A small square in the shard's colour. */
export function swatch(shard) {
  return el('span', { class: 'swatch', style: `background:${color(shard)}` });
}
