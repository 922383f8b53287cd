// Sample vectors generated in the page to show where the space goes: seeded
// Gaussian blobs, each tagged with the shard the snapshot routes it to.

import { dist, gaussian, mulberry32 } from './pca.js';
import { state } from './state.js';

/** Sample vectors to show where the space goes: Gaussian blobs around the
 * centroids (CLUSTER), around the recorded queries when there are some, or
 * isotropic; each coloured by its shard (probe 1 = the writer's choice). */
export function makeSamples() {
  const snap = state.snap;
  const rand = mulberry32(0x5eed + snap.dim * 31 + snap.numDbs);
  const dim = snap.dim;
  // Centres: the centroids, else the distinct recorded queries.
  const seen = new Set();
  const centres = (state.centroids.length ? state.centroids : state.queries.map((q) => Float32Array.from(q.query))).filter((c) => {
    const k = c.join(',');
    return !seen.has(k) && seen.add(k);
  });
  // Spread: a fraction of the median distance from a centre to its nearest
  // neighbour, per dimension.
  let sigma = 1;
  if (centres.length > 1) {
    const nn = centres.map((c, i) => Math.min(...centres.map((d, j) => (i === j ? Infinity : dist(c, d))))).sort((a, b) => a - b);
    const median = nn[Math.floor(nn.length / 2)] || nn[nn.length - 1] || 1;
    sigma = ((state.centroids.length ? 0.4 : 0.6) * median) / Math.sqrt(dim);
  } else if (centres.length === 1) {
    sigma = Math.hypot(...centres[0]) / Math.sqrt(dim) || 1;
  }
  const n = 900;
  const samples = [];
  for (let k = 0; k < n; k++) {
    const v = new Float32Array(dim);
    const c = centres.length ? centres[k % centres.length] : null;
    for (let i = 0; i < dim; i++) v[i] = (c ? c[i] : 0) + gaussian(rand) * sigma;
    samples.push({ v, shard: sampleShard(v) });
  }
  state.samples = samples;
}

/** The shard a vector is written to: probe 1 of CLUSTER / LSH; for CEL and
 * EXPLICIT the vector does not decide (null). */
function sampleShard(v) {
  const s = state.snap.strategy;
  if (s !== 'cluster' && s !== 'lsh') return null;
  try {
    return state.snap.route(v, { numProbes: 1 })[0];
  } catch {
    return null;
  }
}
