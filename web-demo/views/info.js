// The snapshot card (`#info`): strategy, metric, sizes and the routing
// parameters of the loaded snapshot.

import { $, el } from '../dom.js';
import { state } from '../state.js';

export function renderInfo() {
  const i = state.info;
  const m = state.meta;
  const dl = $('#info');
  dl.replaceChildren();
  const add = (k, v) => dl.append(el('dt', { text: k }), el('dd', {}, v));
  add('strategy', el('span', { class: 'pill', text: i.sharding.toUpperCase() }));
  add('metric', el('code', { text: i.metric }));
  add('shards', String(i.num_dbs));
  add('vectors', i.total_vectors.toLocaleString('en'));
  add('dimension', String(i.dim));
  if (i.sharding === 'cluster' || i.sharding === 'lsh') add('default probes', String(m.num_probes));
  if (m.num_hash_bits) add('hash bits', String(m.num_hash_bits));
  if (m.cel_expr) add('CEL', el('code', { text: m.cel_expr }));
  if (m.routing_values) add('routing values', el('code', { text: JSON.stringify(m.routing_values) }));
  if (m.index_type) add('index', m.index_type + (m.quantization ? ` / ${m.quantization}` : ''));
  add('run', el('code', { text: i.run_id, title: i.run_id }));
  add('manifest', el('code', { text: i.manifest_ref ?? '—', title: i.manifest_ref ?? '' }));
}
