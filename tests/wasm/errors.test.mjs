// Errors: every failure is a JS `Error` carrying the core error's message
// (the Display texts of shardvec_core::Error), never a wasm trap; a snapshot
// keeps working after an error; garbage input never panics.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { caseNames, fromParts, loadBuilds, loadCase } from './helpers.mjs';

const builds = await loadBuilds();
const cases = Object.fromEntries(caseNames().map((n) => [n, loadCase(n)]));

/** Asserts that `fn` throws a JS Error (not a wasm RuntimeError) whose message matches. */
function throwsCore(fn, message) {
  assert.throws(fn, (e) => {
    assert.ok(e instanceof Error, 'an Error');
    assert.ok(!(e instanceof WebAssembly.RuntimeError), `not a wasm trap: ${e.message}`);
    if (message instanceof RegExp) assert.match(e.message, message);
    else assert.equal(e.message, message);
    return true;
  });
}

for (const { name: build, mod } of builds) {
  describe(`${build} build`, () => {
    test('query errors carry the core messages', () => {
      for (const c of Object.values(cases)) {
        const snap = fromParts(mod, c);
        const q = Float32Array.from(c.recorded.queries[0].query);
        const opts = c.recorded.queries[0].args.routing_context
          ? { routingContext: c.recorded.queries[0].args.routing_context }
          : c.recorded.snapshot_info.sharding === 'explicit'
            ? { shardIds: [0] }
            : {};
        throwsCore(() => snap.route(q.subarray(1), opts), 'query has dimension 31, the snapshot has dimension 32');
        throwsCore(() => snap.explain(new Float32Array(33), opts), 'query has dimension 33, the snapshot has dimension 32');
        const nan = q.slice();
        nan[3] = NaN;
        throwsCore(() => snap.route(nan, opts), 'query component 3 is not finite (NaN)');
        const inf = q.slice();
        inf[0] = -Infinity;
        throwsCore(() => snap.explain(inf, opts), 'query component 0 is not finite (-inf)');
        const n = snap.numDbs;
        throwsCore(
          () => snap.route(q, { shardIds: [0, n] }),
          `shard id ${n} is out of range: the snapshot has ${n} shards`,
        );
        throwsCore(() => snap.route(q, { shardIds: [-1] }), `shard id -1 is out of range: the snapshot has ${n} shards`);
        throwsCore(() => snap.route(q, { shardIds: [1.5] }), 'shard id 1.5 is not an integer');
        throwsCore(() => snap.route(q, { shardIds: 3 }), 'shardIds must be an array of shard ids');
        throwsCore(() => snap.route(q, 'fast'), 'route options must be an object');
        // The snapshot still routes after every error.
        assert.deepEqual(snap.route(q, { ...opts, shardIds: [n - 1, 0, n - 1] }), [n - 1, 0]);
      }
    });

    test('strategy-specific errors', () => {
      const q = (c) => Float32Array.from(c.recorded.queries[0].query);
      const cluster = fromParts(mod, cases.sqlitevec_cluster_cosine);
      throwsCore(() => cluster.route(q(cases.sqlitevec_cluster_cosine), { numProbes: 0 }), 'num_probes must be at least 1');
      throwsCore(
        () => cluster.route(q(cases.sqlitevec_cluster_cosine), { numProbes: -2 }),
        'numProbes must be a positive integer, got -2',
      );
      throwsCore(
        () => cluster.route(q(cases.sqlitevec_cluster_cosine), { numProbes: 'two' }),
        'numProbes must be a positive integer, got "two"',
      );
      const lsh = fromParts(mod, cases.sqlitevec_lsh_l2);
      throwsCore(() => lsh.explain(q(cases.sqlitevec_lsh_l2), { num_probes: 0 }), 'num_probes must be at least 1');
      const explicit = fromParts(mod, cases.sqlitevec_explicit_cosine);
      throwsCore(() => explicit.route(q(cases.sqlitevec_explicit_cosine)), 'explicit routing needs shard_ids');
      const hash = fromParts(mod, cases.sqlitevec_cel_hash);
      const hq = q(cases.sqlitevec_cel_hash);
      throwsCore(() => hash.route(hq), 'cel routing needs a routing_context');
      throwsCore(() => hash.route(hq, { routingContext: {} }), 'CEL variable `tenant` is missing from the routing context');
      throwsCore(
        () => hash.route(hq, { routingContext: { tenant: 7 } }),
        /^CEL variable `tenant` must be string, got /,
      );
      throwsCore(
        () => hash.route(hq, { routingContext: { tenant: { nested: 1 } } }),
        /^CEL variable `tenant` must be a scalar/,
      );
      throwsCore(() => hash.route(hq, { routingContext: [] }), /^CEL variable `routing_context` must be a JSON object/);
      throwsCore(() => hash.route(hq, { routingContext: { tenant: NaN } }), 'routingContext: NaN is not a finite number');
      const cat = fromParts(mod, cases.sqlitevec_cel_categorical);
      throwsCore(
        () => cat.route(q(cases.sqlitevec_cel_categorical), { routingContext: { region: 'mars' } }),
        'CEL result "mars" is not one of the snapshot\'s routing_values',
      );
    });

    test('snapshot loading errors carry the core messages', () => {
      const c = cases.sqlitevec_cluster_cosine;
      const l = cases.sqlitevec_lsh_l2;
      throwsCore(
        () => mod.Snapshot.fromParts(new TextEncoder().encode('not a manifest at all, just text')),
        'not an SQLite database: missing the 16-byte magic `SQLite format 3\\0`',
      );
      throwsCore(() => mod.Snapshot.fromParts(new Uint8Array(0)), /^not an SQLite database/);
      // A truncated image: the header is fine, the pages are not there.
      throwsCore(() => mod.Snapshot.fromParts(c.manifestBytes.subarray(0, 200)), /^corrupt SQLite image|^not an SQLite/);
      throwsCore(() => mod.Snapshot.fromParts(c.manifestBytes), 'cluster routing needs the `centroids.npy` artefact');
      throwsCore(() => mod.Snapshot.fromParts(l.manifestBytes), 'lsh routing needs the `hyperplanes.npy` artefact');
      throwsCore(
        () => mod.Snapshot.fromParts(c.manifestBytes, undefined, cases.lancedb_lsh_cosine.hyperplanes),
        '.npy centroids.npy: shape is (6, 32), the manifest says (8, 32)',
      );
      throwsCore(
        () => mod.Snapshot.fromParts(c.manifestBytes, undefined, new Uint8Array([1, 2, 3])),
        /^\.npy centroids\.npy: /,
      );
      throwsCore(() => mod.Snapshot.fromParts(c.manifestBytes, '{"nope": 1}', c.centroids), /^_CURRENT pointer: /);
      throwsCore(
        () => mod.Snapshot.fromParts(c.manifestBytes, c.currentText.replace('"format_version":1', '"format_version":2'), c.centroids),
        '_CURRENT pointer: format_version 2 is not 1',
      );
      // Without _CURRENT the manifest URL is unknown.
      const bare = mod.Snapshot.fromParts(c.manifestBytes, undefined, c.centroids);
      assert.equal(bare.manifestRef(), undefined);
      assert.equal(bare.info().manifest_ref, null);
      assert.equal(bare.baseUrl, undefined);
    });

    test('merge input errors', () => {
      throwsCore(() => mod.merge({}, 3), 'perShard must be an array of per-shard result arrays');
      throwsCore(() => mod.merge([{}], 3), 'perShard[0] is not an array');
      throwsCore(() => mod.merge([[{ id: 1, score: 0.5 }], [{ id: 2 }]], 3), 'perShard[1][0]: `score` must be a number');
      throwsCore(() => mod.merge([[{ id: 1.5, score: 0.5 }]], 3), 'perShard[0][0]: `id` must be a string or an integer');
      throwsCore(() => mod.merge([[{ id: 1, score: 0.5 }]], -1), 'topK must be a non-negative integer, got -1');
      throwsCore(() => mod.merge([[{ id: 1, score: 0.5 }]], 1.5), 'topK must be a non-negative integer, got 1.5');
    });

    test('garbage input never traps', () => {
      // Deterministic mutations of every manifest and artefact: each gives a
      // snapshot or an Error, never a WebAssembly.RuntimeError.
      let seed = 12345;
      const rand = (n) => {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        return seed % n;
      };
      let built = 0;
      let refused = 0;
      for (const c of Object.values(cases)) {
        for (let i = 0; i < 40; i++) {
          const m = c.manifestBytes.slice();
          for (let k = 0; k < 1 + rand(8); k++) m[rand(m.length)] = rand(256);
          const cen = c.centroids?.slice();
          if (cen && i % 3 === 0) cen[rand(Math.min(cen.length, 128))] = rand(256);
          try {
            const s = mod.Snapshot.fromParts(m, c.currentText, cen, c.hyperplanes);
            s.info();
            s.shards();
            built++;
          } catch (e) {
            assert.ok(!(e instanceof WebAssembly.RuntimeError), `trap: ${e.message}`);
            assert.ok(e instanceof Error);
            refused++;
          }
        }
      }
      assert.equal(built + refused, 9 * 40);
      // Odd option values.
      const snap = fromParts(mod, cases.sqlitevec_cluster_cosine);
      const q = new Float32Array(32).fill(0.5);
      for (const opts of [null, undefined, {}, { numProbes: null }, { numProbes: 2 ** 40 }, { numProbes: 1e300 }, { shardIds: [] }, { shardIds: [2n] }, { routingContext: null }]) {
        try {
          snap.route(q, opts);
        } catch (e) {
          assert.ok(!(e instanceof WebAssembly.RuntimeError), `trap: ${e.message}`);
        }
      }
      // Deep nesting and cycles in a routing context.
      const deep = {};
      let cur = deep;
      for (let i = 0; i < 200; i++) cur = cur.x = {};
      const cyclic = {};
      cyclic.self = cyclic;
      const hash = fromParts(mod, cases.sqlitevec_cel_hash);
      throwsCore(() => hash.route(q, { routingContext: deep }), /nested deeper than 64 levels/);
      throwsCore(() => hash.route(q, { routingContext: cyclic }), /nested deeper than 64 levels/);
    });
  });
}
