// Where the page's snapshot comes from: the shardvec-wasm package (`./pkg/`,
// built for wasm-bindgen's `--target web`, beside index.html), a snapshot URL
// (`Snapshot.open`) or a shardvec host (`Snapshot.fromHost`), the recorded
// queries next to it, and the page's URL parameters (`?snapshot=`, `?host=`,
// `?queries=`; served by a host at /demo/, the host itself).

import { setStatus } from './dom.js';
import { state } from './state.js';

/** Loads the wasm package into `state.wasm`; on failure the page shows
 * how to build it. */
export async function loadWasm() {
  try {
    // Relative to this module, which sits beside index.html and pkg/.
    const mod = await import('./pkg/shardvec_wasm.js');
    await mod.default();
    state.wasm = mod;
  } catch (e) {
    document.body.dataset.state = 'error';
    setStatus('error', `The shardvec-wasm package could not be loaded from ./pkg/ (${e.message}). Build it with: bash scripts/wasm.sh`);
    throw e;
  }
}

export async function fetchJson(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`GET ${url}: HTTP ${r.status} ${r.statusText}`.trim());
  return r.json();
}

/** `url` made absolute against the page, without trailing slashes. */
export function absoluteUrl(url) {
  return new URL(url, location.href).href.replace(/\/+$/, '');
}

/** Opens the snapshot at the absolute URL `abs`; with `viaHost`, `abs` is a
 * shardvec host and the snapshot comes from its routing files. */
export async function openSnapshot(abs, viaHost) {
  return viaHost ? await state.wasm.Snapshot.fromHost(abs) : await state.wasm.Snapshot.open(abs);
}

/** The recorded queries of the JSON document at `url` that have dimension
 * `dim` (none when it has no `queries` array); throws when it cannot be read. */
export async function fetchRecordedQueries(url, dim) {
  const doc = await fetchJson(url);
  return Array.isArray(doc.queries) ? doc.queries.filter((q) => Array.isArray(q.query) && q.query.length === dim) : [];
}

/** A flat array of `dim`-vectors as rows. */
export function rows(flat, dim) {
  const out = [];
  for (let i = 0; i < flat.length; i += dim) out.push(flat.slice(i, i + dim));
  return out;
}

/** Records the loaded snapshot (or host) and queries URL in the page's URL,
 * so that reloading the page loads them again. */
export function rememberInLocation(abs, queriesUrl, viaHost) {
  const params = new URLSearchParams(location.search);
  params.delete(viaHost ? 'snapshot' : 'host');
  params.set(viaHost ? 'host' : 'snapshot', abs);
  if (queriesUrl) params.set('queries', queriesUrl);
  else params.delete('queries');
  history.replaceState(null, '', `?${params}`);
}

/** The origin, when this page is served by a shardvec host (`shardvec
 * serve --demo-dir`, at /demo/); otherwise null. */
export async function servingHost() {
  if (!location.pathname.startsWith('/demo/') || !location.protocol.startsWith('http')) return null;
  try {
    const r = await fetch(`${location.origin}/v1/snapshot`);
    return r.ok && typeof (await r.json()).manifest_ref === 'string' ? location.origin : null;
  } catch {
    return null;
  }
}

/** What to load at startup: `?host=`, else `?snapshot=`, else the serving
 * host (if any); with the `?queries=` URL. */
export async function initialSource() {
  const params = new URLSearchParams(location.search);
  const snapshot = params.get('snapshot');
  const host = params.get('host') ?? (snapshot ? null : await servingHost());
  return { host, snapshot, queries: params.get('queries') || undefined };
}
