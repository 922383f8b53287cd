// Routing in WebAssembly with SIMD (issue 18): the package is the simd128
// build, and it routes exactly as the native build does. For random CLUSTER
// snapshots of every metric, with dimensions on both sides of the distance
// kernel's boundaries (under 8 terms, one block of 8 to 128, blocks split
// pairwise above 128; multiples of 8 and not), every query's distance to
// every centroid has the same float32 bits in the wasm as in the native
// `shardvec route --explain`, so the ranking (tie-breaks included) and the
// routed shards are the same. The native side is the binary of the Rust test
// build: `shardvec build` publishes the snapshot with the centroids made
// here, `shardvec route --explain` routes the same .npy queries. Nothing is
// recorded; the data comes from a seeded generator.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';

import { NODE_PKG, WEB_PKG, loadBuilds } from './helpers.mjs';
import { shardvecBin } from './hosts.mjs';

const builds = await loadBuilds();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'shardvec-simd-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const DIMS = [1, 7, 8, 9, 13, 127, 128, 129, 300, 768, 1000];
// sqlite-vec has no dot_product; LanceDB shards take it.
const METRICS = { cosine: 'sqlite-vec', l2: 'sqlite-vec', dot_product: 'lancedb' };

/** The features in a module's `target_features` custom section (what
 * rustc compiled it for; wasm-opt keeps the section). */
function targetFeatures(file) {
  const module = new WebAssembly.Module(fs.readFileSync(file));
  const sections = WebAssembly.Module.customSections(module, 'target_features');
  assert.equal(sections.length, 1, `${file}: one target_features section`);
  const bytes = new Uint8Array(sections[0]);
  // A vector of (prefix byte '+' | '-' | '=', name); counts and lengths
  // are LEB128, each under 128 here.
  const features = [];
  let at = 1;
  for (let i = 0; i < bytes[0]; i += 1) {
    const prefix = String.fromCharCode(bytes[at]);
    const len = bytes[at + 1];
    features.push(prefix + new TextDecoder().decode(bytes.subarray(at + 2, at + 2 + len)));
    at += 2 + len;
  }
  assert.equal(at, bytes.length, `${file}: target_features parsed to its end`);
  return features;
}

test('both builds of the package are compiled for simd128', () => {
  for (const dir of [NODE_PKG, WEB_PKG]) {
    const features = targetFeatures(path.join(dir, 'shardvec_wasm_bg.wasm'));
    assert.ok(features.includes('+simd128'), `${dir}: ${features.join(' ')}`);
  }
});

/** mulberry32: a small seeded generator of floats in [0, 1). */
function generator(seed) {
  let a = seed >>> 0;
  const rand = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  return { rand, gauss };
}

/** Writes float32 rows `[rows.length, dim]` as a C-order .npy file. */
function writeNpy(file, rows, dim) {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${rows.length}, ${dim}), }`;
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = 1;
  head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  const data = new Float32Array(rows.length * dim);
  rows.forEach((r, i) => data.set(r, i * dim));
  fs.writeFileSync(file, Buffer.concat([head, Buffer.from(header, 'latin1'), Buffer.from(data.buffer)]));
}

/**
 * A random CLUSTER case: `centroids` with coordinates of very different
 * magnitudes (1e-3, 1 and 1e3 — every other summation order gives other
 * bits), the last one a copy of the first (exact ties: the lower index
 * wins); `vectors` to build shards from; `queries` near centroids, plus a
 * zero query, a query of `-0.0`s, a copy of centroid 0 and its negation.
 */
function randomCase(dim, seed) {
  const { rand, gauss } = generator(seed);
  const scales = Array.from({ length: dim }, () => [1e-3, 1, 1e3][Math.floor(rand() * 3)]);
  const point = () => Float32Array.from(scales, (s) => gauss() * s);
  const near = (c) => Float32Array.from(c, (x, i) => x + gauss() * scales[i] * 0.3);
  const k = 2 + Math.floor(rand() * 23);
  const centroids = Array.from({ length: k - 1 }, point);
  centroids.push(Float32Array.from(centroids[0]));
  const vectors = Array.from({ length: 3 * k }, (_, i) => near(centroids[i % k]));
  const queries = Array.from({ length: 30 }, () => near(centroids[Math.floor(rand() * k)]));
  queries.push(new Float32Array(dim), new Float32Array(dim).fill(-0), Float32Array.from(centroids[0]));
  queries.push(Float32Array.from(centroids[0], (x) => -x));
  const numProbes = 1 + Math.floor(rand() * k);
  return { centroids, vectors, queries, numProbes };
}

// Float32 bits.
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
const bitsOf = (x) => {
  f32[0] = x;
  return u32[0];
};
const fromBits = (b) => {
  u32[0] = b;
  return f32[0];
};

/** `|m| = M * 2^e` (BigInts) of a finite double `v`. */
function binary(v) {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, v);
  const raw = view.getBigUint64(0);
  const exp = Number((raw >> 52n) & 0x7ffn);
  const frac = raw & ((1n << 52n) - 1n);
  return exp === 0 ? { M: frac, e: -1074 } : { M: frac | (1n << 52n), e: exp - 1075 };
}

/** The sign of `|decimal text| - |v|`, exactly (BigInt arithmetic). */
function compareMagnitudes(text, v) {
  const [, int, frac = '', exp = '0'] = text.match(/^-?(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/);
  const D = BigInt(int + frac);
  const k = Number(exp) - frac.length;
  const { M, e } = binary(Math.abs(v));
  const p = (base, n) => BigInt(base) ** BigInt(Math.max(n, 0));
  const left = D * p(10, k) * p(2, -e);
  const right = M * p(2, e) * p(10, -k);
  return left === right ? 0 : left > right ? 1 : -1;
}

/**
 * The bits of the float32 a number of the native JSON stands for, from its
 * text. serde_json writes an f32 as the shortest decimal that rounds to it.
 * Number() rounds that decimal to a double `v` and Math.fround the double
 * to a float32: the float32 the decimal rounds to, except where `v` lies
 * exactly halfway between two float32s (double rounding; ryu writes such
 * midpoints, e.g. -338855600 for -338855584 with its even mantissa). There
 * the decimal is compared with `v` exactly: equal, it rounds to the even
 * one as Math.fround does; otherwise to the float32 on its side.
 */
function nativeBits(text) {
  const v = Number(text);
  assert.ok(Number.isFinite(v), `native distance ${text}`);
  const y = Math.fround(v);
  if (y === v) return bitsOf(y);
  const b = bitsOf(y);
  // The float32 on v's other side (bits order magnitudes, sign apart).
  const other = fromBits(Math.abs(y) > Math.abs(v) ? b - 1 : b + 1);
  if (Math.abs(v - y) !== Math.abs(v - other)) return b;
  const side = compareMagnitudes(text, v);
  if (side === 0) return b;
  const [inner, outer] = Math.abs(y) < Math.abs(other) ? [y, other] : [other, y];
  return bitsOf(side > 0 ? outer : inner);
}

/** The `distances` of a line of `shardvec route --explain`, as written. */
function distanceTexts(line) {
  const list = line.match(/"distances":\[([^\]]*)\]/);
  assert.ok(list, line);
  return list[1] === '' ? [] : list[1].split(',');
}

const wasmBits = (distances) => Array.from(Float32Array.from(distances), bitsOf);

describe('routes and distances equal the native build bit for bit', () => {
  DIMS.forEach((dim, d) => {
    Object.entries(METRICS).forEach(([metric, backend], m) => {
      test(`${metric}, dimension ${dim}`, () => {
        const c = randomCase(dim, 1000 + 10 * d + m);
        const dir = path.join(tmp, `${metric}-${dim}`);
        const prefix = path.join(dir, 'snapshot');
        fs.mkdirSync(dir);
        const file = (name) => path.join(dir, name);
        writeNpy(file('centroids.npy'), c.centroids, dim);
        writeNpy(file('vectors.npy'), c.vectors, dim);
        writeNpy(file('queries.npy'), c.queries, dim);
        const bin = shardvecBin();
        const run = (args) => execFileSync(bin, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
        run([
          'build', '--input', file('vectors.npy'), '--prefix', prefix, '--strategy', 'cluster',
          '--centroids', file('centroids.npy'), '--num-dbs', String(c.centroids.length), '--metric', metric,
          '--backend', backend, '--no-progress', '--json',
        ]);
        const lines = run([
          'route', '--prefix', prefix, '--query-file', file('queries.npy'), '--explain',
          '--num-probes', String(c.numProbes), '--local-root', file('cache'),
        ]).trim().split('\n');
        const native = lines.map((line) => ({ ...JSON.parse(line), bits: distanceTexts(line).map(nativeBits) }));
        assert.equal(native.length, c.queries.length);

        const currentText = fs.readFileSync(path.join(prefix, '_CURRENT'), 'utf8');
        const { manifest_ref: ref, run_id: runId } = JSON.parse(currentText);
        const manifest = new Uint8Array(fs.readFileSync(new URL(ref)));
        const centroids = new Uint8Array(fs.readFileSync(path.join(prefix, 'vector_meta', `run_id=${runId}`, 'centroids.npy')));
        const opts = { numProbes: c.numProbes };
        for (const { name, mod } of builds) {
          const snap = mod.Snapshot.fromParts(manifest, currentText, centroids);
          assert.equal(snap.dim, dim);
          c.queries.forEach((q, i) => {
            const what = `${name} build, query ${i}`;
            const want = native[i];
            const got = snap.explain(q, opts);
            assert.equal(got.kind, 'cluster', what);
            assert.equal(got.distances.length, c.centroids.length, what);
            assert.deepEqual(wasmBits(got.distances), want.bits, `${what}: distance bits`);
            assert.deepEqual(got.ranking, want.ranking, `${what}: ranking`);
            assert.deepEqual(got.shards, want.shards, `${what}: shards`);
            assert.deepEqual(snap.route(q, opts), want.shards, `${what}: route`);
          });
          // The duplicated centroid ties with centroid 0 on every query.
          const tie = native[c.queries.length - 2].bits;
          assert.equal(tie[0], tie[c.centroids.length - 1]);
          snap.free?.();
        }
      });
    });
  });
});
