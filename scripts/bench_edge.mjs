// What one search costs an edge worker inside Cloudflare's workerd (through
// miniflare, tests/edge/node_modules): the CPU time of route + merge per
// query, and the Worker's bundle size. A bench Worker loads the --target web
// package (web-demo/pkg, built by scripts/wasm.sh) and a snapshot's routing
// files as modules, and routes N queries of a float32 .npy file (numProbes
// 4), merging for each query one list of 10 hits (id, score, payload) per
// routed shard, as a search's per-shard answers. workerd's clocks stand
// still while a request computes (no timing side channel), so the time is
// taken outside: the wall time of a request of N queries less that of an
// empty one, divided by N (the median of 7 runs), for routing alone and
// for route + merge. Prints one JSON line.
//
//   node scripts/bench_edge.mjs SNAPSHOT_DIR QUERIES.npy [N]

import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { Miniflare } = await import(path.join(root, 'tests/edge/node_modules/miniflare/dist/src/index.js'));
const [dir, queriesFile, nArg] = process.argv.slice(2);
const N = Number(nArg ?? 500);
const pkg = path.join(root, 'web-demo/pkg');

const currentText = fs.readFileSync(path.join(dir, '_CURRENT'), 'utf8');
const current = JSON.parse(currentText);
const manifest = fs.readFileSync(path.join(dir, current.manifest_ref.slice(current.manifest_ref.indexOf('manifests/'))));
const centroids = fs.readFileSync(path.join(dir, `vector_meta/run_id=${current.run_id}/centroids.npy`));
const npy = fs.readFileSync(queriesFile);
const headerLen = npy.readUInt16LE(8);
const queries = npy.subarray(10 + headerLen);

const worker = `
import { Snapshot, merge, initSync } from './pkg/shardvec_wasm.js';
import wasm from './pkg/shardvec_wasm_bg.wasm';
import manifest from './manifest.bin';
import centroids from './centroids.npy';
import queries from './queries.bin';
import current from './current.txt';
initSync({ module: wasm });
const snap = Snapshot.fromParts(new Uint8Array(manifest), current, new Uint8Array(centroids));
const dim = snap.dim;
const qs = new Float32Array(queries);
const nq = qs.length / dim;
const hits = (route) => route.map((s, j) =>
  Array.from({ length: 10 }, (_, k) => ({ id: s * 100000 + k, score: 0.01 * (k + 1) + 0.001 * j, payload: { i: k, tenant: 'acme' } })));
export default {
  async fetch(request) {
    const params = new URL(request.url).searchParams;
    const n = Number(params.get('n'));
    const merging = params.get('merge') === '1';
    let sink = 0;
    for (let i = 0; i < n; i++) {
      const q = qs.subarray((i % nq) * dim, (i % nq + 1) * dim);
      const route = snap.route(q, { numProbes: 4 });
      sink += merging ? merge(hits(route), 10).length : route.length;
    }
    return new Response(String(sink));
  },
};`;

const mf = new Miniflare({
  modulesRoot: '/bench',
  modules: [
    { type: 'ESModule', path: '/bench/worker.js', contents: worker },
    { type: 'ESModule', path: '/bench/pkg/shardvec_wasm.js', contents: fs.readFileSync(path.join(pkg, 'shardvec_wasm.js'), 'utf8') },
    { type: 'CompiledWasm', path: '/bench/pkg/shardvec_wasm_bg.wasm', contents: fs.readFileSync(path.join(pkg, 'shardvec_wasm_bg.wasm')) },
    { type: 'Data', path: '/bench/manifest.bin', contents: manifest },
    { type: 'Data', path: '/bench/centroids.npy', contents: centroids },
    { type: 'Data', path: '/bench/queries.bin', contents: queries },
    { type: 'Text', path: '/bench/current.txt', contents: currentText },
  ],
  compatibilityDate: '2026-04-24',
});

async function timed(n, merging) {
  const t0 = performance.now();
  const r = await mf.dispatchFetch(`http://bench/?n=${n}&merge=${merging ? 1 : 0}`);
  await r.text();
  return performance.now() - t0;
}
const median = (xs) => xs.slice().sort((a, b) => a - b)[xs.length >> 1];
/** Microseconds per query, route alone or route + merge. */
async function perQuery(merging) {
  await timed(N, merging); // warm up (compile tiers)
  const per = [];
  for (let run = 0; run < 7; run++) {
    const empty = median([await timed(0), await timed(0), await timed(0)]);
    per.push(((await timed(N, merging)) - empty) / N);
  }
  return Math.round(median(per) * 1000);
}
const routeUs = await perQuery(false);
const routeMergeUs = await perQuery(true);
await mf.dispose();

// The Worker's bundle: its script, the shared glue, the package's JS and wasm.
const files = [
  'examples/cloudflare-worker/src/worker.js',
  'examples/edge-service/edge-service.js',
  'web-demo/pkg/shardvec_wasm.js',
  'web-demo/pkg/shardvec_wasm_bg.wasm',
].map((f) => fs.readFileSync(path.join(root, f)));
const bytes = files.reduce((s, b) => s + b.length, 0);
const gzipped = zlib.gzipSync(Buffer.concat(files), { level: 9 }).length;

console.log(JSON.stringify({
  route_us_per_query: routeUs,
  route_merge_us_per_query: routeMergeUs,
  queries_per_request: N,
  dim: Number(/\((\d+), (\d+)\)/.exec(npy.toString('latin1', 10, 10 + headerLen))[2]),
  bundle_bytes: bytes,
  bundle_gzip_bytes: gzipped,
}));
