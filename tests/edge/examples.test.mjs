// The deployable edge examples, run for real: the Cloudflare Worker
// (examples/cloudflare-worker) in workerd through miniflare, and the Deno
// service (examples/deno) under `deno serve`, each in front of three
// native `shardvec serve` hosts on 127.0.0.1 (two halves of a fixture's
// shards and a replica of all of them). Every recorded query of every
// peer fixture (sqlite-vec and LanceDB) is posted to /search of both, as a
// host's /v1/search body: the answer is a host's /v1/search answer (the
// same keys, ids, scores, route, shard count and manifest) and the
// fixture's recorded answer.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { caseNames, loadCase, ROOT, sameAsRecorded } from '../wasm/helpers.mjs';
import { ids, postJson, scores, startHost } from '../wasm/hosts.mjs';

const BIN = path.join(ROOT, 'tests/edge/node_modules/.bin');
const WORKER = path.join(ROOT, 'examples/cloudflare-worker');
const DENO = path.join(ROOT, 'examples/deno');

for (const pkg of [path.join(WORKER, 'pkg'), path.join(DENO, 'pkg')]) {
  if (!fs.existsSync(path.join(pkg, 'shardvec_wasm_bg.wasm'))) {
    throw new Error(`${pkg} is missing: build the package first (bash scripts/wasm.sh)`);
  }
}

const { Miniflare } = await import(path.join(ROOT, 'tests/edge/node_modules/miniflare/dist/src/index.js'));

/** The Worker in workerd, with `vars` as its [vars]. Returns `{post, get, close}`. */
export async function startWorker(vars) {
  const mf = new Miniflare({
    scriptPath: path.join(WORKER, 'src/worker.js'),
    modules: true,
    // The worker imports ../pkg and ../../edge-service: the root of both.
    modulesRoot: path.join(ROOT, 'examples'),
    modulesRules: [
      { type: 'ESModule', include: ['**/*.js'] },
      { type: 'CompiledWasm', include: ['**/*.wasm'] },
    ],
    compatibilityDate: '2026-04-24',
    bindings: vars,
  });
  await mf.ready;
  return {
    name: 'worker (workerd)',
    post: async (body) => {
      const r = await mf.dispatchFetch('http://edge.test/search', { method: 'POST', body: JSON.stringify(body) });
      return { status: r.status, body: await r.json() };
    },
    get: async (p) => {
      const r = await mf.dispatchFetch(`http://edge.test${p}`);
      return { status: r.status, body: await r.json() };
    },
    close: () => mf.dispose(),
  };
}

/** The Deno service (`deno serve`) on a free port, with `vars` as its environment. */
export async function startDeno(vars) {
  const proc = spawn(
    path.join(BIN, 'deno'),
    ['serve', '--allow-net', '--allow-env', '--allow-read', '--host', '127.0.0.1', '--port', '0', 'main.ts'],
    {
      cwd: DENO,
      env: { ...process.env, ...vars, DENO_NO_UPDATE_CHECK: '1', NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  const exited = new Promise((resolve) => proc.on('exit', (code) => resolve(code)));
  const url = await new Promise((resolve, reject) => {
    const look = (d) => {
      output += d;
      const m = output.match(/Listening on (http:\/\/\S+?)\/?\s/);
      if (m) resolve(m[1].replace('0.0.0.0', '127.0.0.1'));
    };
    proc.stdout.on('data', look);
    proc.stderr.on('data', look);
    exited.then((code) => reject(new Error(`deno serve exited (${code}) before listening: ${output}`)));
  });
  return {
    name: 'deno',
    url,
    post: (body) => postJson(`${url}/search`, body),
    get: async (p) => {
      const r = await fetch(`${url}${p}`);
      return { status: r.status, body: await r.json() };
    },
    output: () => output,
    close: async () => {
      proc.kill('SIGTERM');
      await exited;
    },
  };
}

const bodyOf = (q) => ({ query: q.query, top_k: q.top_k, ...q.args });

describe('every peer fixture through the Worker and the Deno service', () => {
  for (const name of caseNames()) {
    test(`${name}: every recorded query, as a host answers it`, async () => {
      const c = loadCase(name);
      const n = c.recorded.snapshot_info.num_dbs;
      const half = Math.ceil(n / 2);
      const a = await startHost(c.dir, { shards: `0-${half - 1}` });
      const b = n > 1 ? await startHost(c.dir, { shards: `${half}-${n - 1}` }) : null;
      const whole = await startHost(c.dir);
      const range = (from, to) => [...Array(to - from).keys()].map((i) => i + from);
      const hosts = [{ url: a.url, shards: range(0, half) }, ...(b ? [{ url: b.url, shards: range(half, n) }] : []), { url: whole.url, shards: range(0, n) }];
      const vars = { SHARDVEC_HOSTS: JSON.stringify(hosts), SHARDVEC_OPTIONS: '{"timeoutMs": 20000}' };
      const edges = [await startWorker(vars), await startDeno(vars)];
      try {
        for (const edge of edges) {
          const health = await edge.get('/healthz');
          assert.equal(health.status, 200, `${edge.name}: ${JSON.stringify(health.body)}`);
          assert.equal(health.body.manifest_ref, c.recorded.snapshot_info.manifest_ref);
          for (const [i, q] of c.recorded.queries.entries()) {
            const what = `${edge.name}: ${name} query ${i}`;
            const got = await edge.post(bodyOf(q));
            assert.equal(got.status, 200, `${what}: ${JSON.stringify(got.body)}`);
            const native = await postJson(`${whole.url}/v1/search`, bodyOf(q));
            assert.equal(native.status, 200, JSON.stringify(native.body));
            assert.deepEqual(Object.keys(got.body).sort(), Object.keys(native.body).sort(), what);
            assert.deepEqual(ids(got.body.results), ids(native.body.results), what);
            assert.deepEqual(scores(got.body.results), scores(native.body.results), what);
            assert.deepEqual(got.body.results, native.body.results, `${what}: hits, payloads and shards`);
            assert.deepEqual(got.body.route, native.body.route, what);
            assert.equal(got.body.num_shards_queried, native.body.num_shards_queried, what);
            assert.equal(got.body.manifest_ref, native.body.manifest_ref, what);
            sameAsRecorded(what, got.body.results, q.results);
          }
        }
      } finally {
        await Promise.all(edges.map((e) => e.close()));
        await Promise.all([a, b, whole].filter(Boolean).map((h) => h.stop()));
      }
    });
  }
});

describe('requests the edge refuses, as a host does', () => {
  const c = loadCase('sqlitevec_cluster_cosine');
  let host;
  let edges;

  before(async () => {
    host = await startHost(c.dir);
    const vars = { SHARDVEC_HOSTS: JSON.stringify([{ url: host.url, shards: [...Array(8).keys()] }]) };
    edges = [await startWorker(vars), await startDeno(vars)];
  });
  after(async () => {
    await Promise.all(edges.map((e) => e.close()));
    await host.stop();
  });

  test('bad JSON, a wrong dimension, a bad filter: the host\'s status and code', async () => {
    const q = c.recorded.queries[0].query;
    const cases = [
      [{ query: q, topk: 3 }, 400, 'bad_json'],
      [{ query: [1, 2, 3] }, 400, 'invalid_query'],
      [{ query: q, filter: { i: { $gte: true } } }, 400, 'invalid_filter'],
      [{ query: q, top_k: 5000 }, 400, 'top_k_too_large'],
    ];
    for (const edge of edges) {
      for (const [body, status, code] of cases) {
        const got = await edge.post(body);
        const native = await postJson(`${host.url}/v1/search`, body);
        assert.equal(got.status, status, `${edge.name} ${JSON.stringify(body).slice(0, 60)}: ${JSON.stringify(got.body)}`);
        assert.equal(got.body.error.code, code, `${edge.name}: ${JSON.stringify(got.body)}`);
        assert.equal(native.status, status);
        if (code !== 'top_k_too_large') assert.equal(got.body.error.code, native.body.error.code);
        if (code === 'invalid_filter' || code === 'invalid_query') assert.equal(got.body.error.message, native.body.error.message);
      }
      const missing = await edge.get('/nothing');
      assert.equal(missing.status, 404);
      assert.equal(missing.body.error.code, 'not_found');
    }
  });

  test('hosts down: 502 naming the code and the shards, not the hosts', async () => {
    await host.stop();
    for (const edge of edges) {
      const got = await edge.post({ query: c.recorded.queries[0].query, shard_ids: [6, 1] });
      assert.equal(got.status, 502, `${edge.name}: ${JSON.stringify(got.body)}`);
      assert.deepEqual(got.body, {
        error: { code: 'request_failed', message: "no replica of shards 6, 1 answered (request_failed); details are in the edge's log" },
      });
    }
  });
});
