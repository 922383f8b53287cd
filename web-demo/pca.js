// Small numeric helpers of the demo: a seeded random generator, Gaussian
// samples and a two-component PCA by power iteration (dimensions are small:
// a 32×32 covariance matrix).

/** A seeded PRNG (mulberry32): returns floats in [0, 1). */
export function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A standard normal sample (Box–Muller). */
export function gaussian(rand) {
  let u = 0;
  while (u === 0) u = rand();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
}

/** Euclidean distance. */
export function dist(a, b) {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return Math.sqrt(s);
}

/**
 * The two principal axes of `points` (arrays of equal length). Returns
 * `{ mean, axes, variance, project }`, where `project(p)` gives `[x, y]`.
 */
export function pca2(points) {
  const n = points.length;
  const d = points[0].length;
  const mean = new Float64Array(d);
  for (const p of points) for (let i = 0; i < d; i++) mean[i] += p[i] / n;
  const cov = Array.from({ length: d }, () => new Float64Array(d));
  for (const p of points) {
    for (let i = 0; i < d; i++) {
      const di = p[i] - mean[i];
      for (let j = i; j < d; j++) cov[i][j] += (di * (p[j] - mean[j])) / n;
    }
  }
  for (let i = 0; i < d; i++) for (let j = 0; j < i; j++) cov[i][j] = cov[j][i];

  const axes = [];
  const variance = [];
  for (let k = 0; k < 2; k++) {
    // Deterministic start, orthogonal to the axes found so far.
    let v = Float64Array.from({ length: d }, (_, i) => 1 + ((i * 7 + k * 3) % 5) / 10);
    let lambda = 0;
    for (let it = 0; it < 300; it++) {
      for (const a of axes) {
        const dot = a.reduce((s, x, i) => s + x * v[i], 0);
        for (let i = 0; i < d; i++) v[i] -= dot * a[i];
      }
      const w = new Float64Array(d);
      for (let i = 0; i < d; i++) {
        let s = 0;
        for (let j = 0; j < d; j++) s += cov[i][j] * v[j];
        w[i] = s;
      }
      const norm = Math.hypot(...w);
      if (norm === 0) break;
      lambda = norm;
      v = w.map((x) => x / norm);
    }
    axes.push(v);
    variance.push(lambda);
  }
  const project = (p) =>
    axes.map((a) => {
      let s = 0;
      for (let i = 0; i < d; i++) s += (p[i] - mean[i]) * a[i];
      return s;
    });
  const total = cov.reduce((s, row, i) => s + row[i], 0);
  return { mean, axes, variance, explained: variance.map((v) => (total ? v / total : 0)), project };
}
