// Routing alone in WebAssembly under Node: the nodejs build of the package
// (wasm/pkg-node, built by scripts/wasm.sh) routes every query of a
// float32 .npy file with the snapshot in a local folder, like
// `shardvec bench --route-only` does natively. Prints one JSON line.
//
//   node scripts/bench_route.mjs SNAPSHOT_DIR QUERIES.npy [NUM_PROBES]

import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { Snapshot } = createRequire(import.meta.url)(path.join(root, 'wasm/pkg-node/shardvec_wasm.js'));
const [dir, queriesFile, probes] = process.argv.slice(2);

/** Rows of a float32 C-order .npy [q, dim]. */
function npyRows(file) {
  const buf = fs.readFileSync(file);
  const headerLen = buf.readUInt16LE(8);
  const header = buf.toString('latin1', 10, 10 + headerLen);
  if (!header.includes("'<f4'")) throw new Error(`${file}: expected float32`);
  const [q, dim] = header.match(/\((\d+), (\d+)\)/).slice(1).map(Number);
  const data = new Float32Array(buf.buffer.slice(buf.byteOffset + 10 + headerLen, buf.byteOffset + buf.length));
  return Array.from({ length: q }, (_, i) => data.subarray(i * dim, (i + 1) * dim));
}

const currentText = fs.readFileSync(path.join(dir, '_CURRENT'), 'utf8');
const current = JSON.parse(currentText);
// Recorded URLs start with the prefix the snapshot was written at; the
// manifest key is what follows `manifests/`.
const key = current.manifest_ref.slice(current.manifest_ref.indexOf('manifests/'));
const manifest = fs.readFileSync(path.join(dir, key));
// The routing artefacts the writer publishes next to the run's metadata.
const artefact = (name) => {
  const file = path.join(dir, `vector_meta/run_id=${current.run_id}/${name}`);
  return fs.existsSync(file) ? fs.readFileSync(file) : undefined;
};
const snap = Snapshot.fromParts(manifest, currentText, artefact('centroids.npy'), artefact('hyperplanes.npy'));
const queries = npyRows(queriesFile);
const opts = probes ? { numProbes: Number(probes) } : undefined;
for (const q of queries) snap.route(q, opts);
const rounds = Math.max(1, Math.ceil(10000 / queries.length));
const t0 = process.hrtime.bigint();
for (let r = 0; r < rounds; r += 1) for (const q of queries) snap.route(q, opts);
const ns = Number(process.hrtime.bigint() - t0) / (rounds * queries.length);
console.log(JSON.stringify({ route_ns_per_query: ns, routes: rounds * queries.length, dim: snap.dim, num_dbs: snap.numDbs, strategy: snap.strategy }));
