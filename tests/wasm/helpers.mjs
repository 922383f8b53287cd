// Shared helpers of the wasm package tests (node --test): the two builds of
// the package, the peer fixtures read from disk, a static HTTP server on
// 127.0.0.1, and float32 arithmetic done the way docs/format.md defines routing
// distances (to check `explain` against numbers computed outside the wasm).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** `tests/fixtures/peer` in the repository (`SHARDVEC_FIXTURES` overrides). */
export function fixturesDir() {
  return process.env.SHARDVEC_FIXTURES ?? path.resolve(ROOT, 'tests/fixtures/peer');
}

/** The fixture case names, from index.json. */
export function caseNames() {
  const index = JSON.parse(fs.readFileSync(path.join(fixturesDir(), 'index.json'), 'utf8'));
  return index.cases.map((c) => c.case);
}

/** The folders of the two builds of the package (`nodejs`, `web`). */
export const NODE_PKG = process.env.SHARDVEC_WASM_NODE_PKG ?? path.join(ROOT, 'wasm/pkg-node');
export const WEB_PKG = process.env.SHARDVEC_WASM_WEB_PKG ?? path.join(ROOT, 'web-demo/pkg');

function need(file) {
  if (!fs.existsSync(file)) {
    throw new Error(`${file} is missing: build the package first (bash scripts/wasm.sh)`);
  }
  return file;
}

/**
 * Both builds of the package: `nodejs` (wasm-pack --target nodejs, CommonJS)
 * and `web` (--target web, the ES module the demo page loads, initialised
 * here from the .wasm bytes as an edge worker would).
 */
export async function loadBuilds() {
  const require = createRequire(import.meta.url);
  const nodeMod = require(need(path.join(NODE_PKG, 'shardvec_wasm.js')));
  const web = await import(pathToFileURL(need(path.join(WEB_PKG, 'shardvec_wasm.js'))).href);
  web.initSync({ module: fs.readFileSync(need(path.join(WEB_PKG, 'shardvec_wasm_bg.wasm'))) });
  return [
    { name: 'nodejs', mod: nodeMod },
    { name: 'web', mod: web },
  ];
}

/** A fixture case: its recorded answers and its files, read from disk. */
export function loadCase(name) {
  const root = fixturesDir();
  const dir = path.join(root, name);
  const recorded = JSON.parse(fs.readFileSync(path.join(root, `${name}.json`), 'utf8'));
  const currentText = fs.readFileSync(path.join(dir, '_CURRENT'), 'utf8');
  const current = JSON.parse(currentText);
  const local = (url) => {
    assert.ok(url.startsWith(`${recorded.prefix}/`), `${url} is under ${recorded.prefix}`);
    return path.join(dir, url.slice(recorded.prefix.length + 1));
  };
  // The artefacts are the snapshot objects named so, in the run's vector_meta.
  // (`objects` lists keys under the bucket: `<case>/vector_meta/...`.)
  const artefact = (file) => {
    const key = `${name}/vector_meta/run_id=${recorded.snapshot_info.run_id}/${file}`;
    return recorded.objects.includes(key) ? new Uint8Array(fs.readFileSync(path.join(root, key))) : undefined;
  };
  return {
    name,
    dir,
    recorded,
    currentText,
    manifestBytes: new Uint8Array(fs.readFileSync(local(current.manifest_ref))),
    centroids: artefact('centroids.npy'),
    hyperplanes: artefact('hyperplanes.npy'),
  };
}

/** `Snapshot.fromParts` over a case's files. */
export function fromParts(mod, c) {
  return mod.Snapshot.fromParts(c.manifestBytes, c.currentText, c.centroids, c.hyperplanes);
}

/** Route options (camelCase) from a recorded query's `args` (snake_case). */
export function routeOptions(args) {
  const o = {};
  if (args.num_probes !== undefined) o.numProbes = args.num_probes;
  if (args.shard_ids !== undefined) o.shardIds = args.shard_ids;
  if (args.routing_context !== undefined) o.routingContext = args.routing_context;
  return o;
}

const TYPES = {
  '.json': 'application/json',
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.wasm': 'application/wasm',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
};

/**
 * A static HTTP server on 127.0.0.1 (a free port). `mounts` maps URL path
 * prefixes to folders; `overrides` maps exact URL paths to bodies (or to a
 * status number) and is checked first. Paths are percent-decoded; nothing
 * outside a mounted folder is served. Returns `{url, close, requests}`.
 */
export async function serve(mounts, overrides = new Map()) {
  const requests = [];
  const server = http.createServer((req, res) => {
    let pathname;
    try {
      pathname = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    } catch {
      res.writeHead(400).end();
      return;
    }
    requests.push(pathname);
    const send = (status, body, type) => {
      res.writeHead(status, {
        'content-type': type ?? 'application/octet-stream',
        'cache-control': 'no-store',
      });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (overrides.has(pathname)) {
      const o = overrides.get(pathname);
      if (typeof o === 'number') send(o, `status ${o}`);
      else send(200, o);
      return;
    }
    for (const [prefix, folder] of Object.entries(mounts)) {
      if (pathname !== prefix && !pathname.startsWith(prefix.endsWith('/') ? prefix : `${prefix}/`)) continue;
      const rel = pathname.slice(prefix.length).replace(/^\/+/, '');
      const file = path.resolve(folder, rel || 'index.html');
      if (!file.startsWith(path.resolve(folder))) break;
      let target = file;
      try {
        if (fs.statSync(target).isDirectory()) target = path.join(target, 'index.html');
        const body = fs.readFileSync(target);
        send(200, body, TYPES[path.extname(target)]);
        return;
      } catch {
        break;
      }
    }
    send(404, 'not found', 'text/plain');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections?.();
        server.close(resolve);
      }),
  };
}

/**
 * A search's hits equal a peer fixture's recorded ones: the same ids in the
 * same order, except inside groups of tied recorded scores, and the same
 * scores to 1e-4 relative (or half the recorded score: the reference's
 * `2·(1 − cos)` on indexed cosine LanceDB shards, tests/fixtures/peer/README.md).
 */
export function sameAsRecorded(what, got, want) {
  assert.equal(got.length, want.length, `${what}: count`);
  const close = (a, b) => Math.abs(a - b) <= 1e-4 * Math.max(Math.abs(a), Math.abs(b), 1e-6);
  got.forEach((g, i) => {
    const w = want[i];
    const halved = close(g.score, w.score / 2);
    assert.ok(close(g.score, w.score) || halved, `${what}: score ${i}: ${g.score} vs ${w.score}`);
    if (String(g.id) !== String(w.id)) {
      const tied = want.filter((r) => close(r.score, w.score)).map((r) => String(r.id));
      assert.ok(tied.length > 1 && tied.includes(String(g.id)), `${what}: result ${i} is ${g.id}, recorded ${w.id}`);
    }
  });
}

// ---- float32 routing arithmetic (docs/format.md), outside the wasm ---------------

const f = Math.fround;

/**
 * Σ terms[i] in float32, in the order of NumPy's `pairwise_sum` (what the
 * core documents): fewer than 8 terms in index order; up to 128 as 8
 * interleaved partial sums combined ((r0+r1)+(r2+r3))+((r4+r5)+(r6+r7)),
 * then the rest in order; longer runs split in halves whose first is a
 * multiple of 8.
 */
export function pairwiseF32(t, start = 0, n = t.length) {
  if (n < 8) {
    let res = 0;
    for (let i = start; i < start + n; i++) res = f(res + t[i]);
    return res;
  }
  if (n <= 128) {
    const r = [];
    for (let j = 0; j < 8; j++) r.push(t[start + j]);
    const whole = n - (n % 8);
    let i = 8;
    for (; i < whole; i += 8) for (let j = 0; j < 8; j++) r[j] = f(r[j] + t[start + i + j]);
    let res = f(f(f(r[0] + r[1]) + f(r[2] + r[3])) + f(f(r[4] + r[5]) + f(r[6] + r[7])));
    for (; i < n; i++) res = f(res + t[start + i]);
    return res;
  }
  let n2 = Math.floor(n / 2);
  n2 -= n2 % 8;
  return f(pairwiseF32(t, start, n2) + pairwiseF32(t, start + n2, n - n2));
}

/** Σ a_i·b_i: float32 products, pairwise float32 sum. */
export function dotF32(a, b) {
  return pairwiseF32(Array.from(a, (x, i) => f(x * b[i])));
}

/** The routing distance of docs/format.md between `q` and `c`, in float32. */
export function distanceF32(metric, q, c) {
  if (metric === 'l2') {
    return pairwiseF32(
      Array.from(q, (x, i) => {
        const d = f(c[i] - x);
        return f(d * d);
      }),
    );
  }
  if (metric === 'dot_product') return -dotF32(c, q);
  const qn = f(Math.sqrt(dotF32(q, q)));
  if (qn === 0) return 1;
  const cn = f(Math.sqrt(dotF32(c, c)));
  return f(1 - f(dotF32(c, q) / f(f(cn * qn) + f(1e-10))));
}

/** Rows of a row-major matrix. */
export function rows(flat, dim) {
  const out = [];
  for (let i = 0; i < flat.length; i += dim) out.push(flat.subarray(i, i + dim));
  return out;
}

/** Index order of `values` by a stable ascending sort. */
export function stableOrder(values) {
  return values
    .map((v, i) => [v, i])
    .sort((a, b) => a[0] - b[0] || a[1] - b[1])
    .map(([, i]) => i);
}
