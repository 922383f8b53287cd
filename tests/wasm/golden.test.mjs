// The golden files shared with the native tests (tests/golden/, written by
// tests/golden/make_routes.py independently of shardvec; the native side is
// tests/it/golden_routes.rs): the wasm package routes every golden query
// to the expected shards and merges every golden case to the expected top-k.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';

import { ROOT, caseNames, fromParts, loadBuilds, loadCase, routeOptions } from './helpers.mjs';

const builds = await loadBuilds();
const routes = JSON.parse(fs.readFileSync(path.join(ROOT, 'tests/golden/routes.json'), 'utf8'));
const merges = JSON.parse(fs.readFileSync(path.join(ROOT, 'tests/golden/merge.json'), 'utf8'));

test('the golden file covers every fixture case', () => {
  assert.deepEqual(Object.keys(routes.cases).sort(), caseNames().sort());
  const names = Object.values(routes.cases).flat().map((q) => q.name);
  for (const needle of ['exact tie', 'on hyperplane', 'CEL routing contexts', 'explicit']) {
    assert.ok(names.some((n) => n.includes(needle)), needle);
  }
});

for (const { name: build, mod } of builds) {
  describe(`${build} build: golden routes`, () => {
    for (const [name, queries] of Object.entries(routes.cases)) {
      test(name, () => {
        const snap = fromParts(mod, loadCase(name));
        let n = 0;
        for (const q of queries) {
          const query = Float32Array.from(q.query);
          // Golden values are float32 numbers: nothing is lost here.
          assert.deepEqual(Array.from(query), q.query);
          for (const e of q.expect) {
            const what = `${name}: ${q.name} with ${JSON.stringify(e.args)}`;
            const opts = routeOptions(e.args);
            assert.deepEqual(snap.route(query, opts), e.route, what);
            assert.deepEqual(snap.explain(query, opts).shards, e.route, `${what}: explain`);
            n++;
          }
        }
        assert.ok(n > 0);
      });
    }
  });

  describe(`${build} build: golden merges`, () => {
    test('merge equals the golden top-k', () => {
      assert.ok(merges.cases.length >= 20);
      for (const [i, c] of merges.cases.entries()) {
        const got = mod.merge(c.per_shard, c.top_k);
        assert.deepEqual(got, c.expected, `merge case ${i}`);
        // The result objects are the caller's own (extra keys survive).
        if (got.length) assert.ok(c.per_shard.flat().includes(got[0]));
      }
    });

    test('merge keeps extra keys, puts NaN last, and takes BigInt ids', () => {
      const a = [{ id: 'a', score: 0.5, shard: 0 }, { id: 'b', score: NaN, shard: 0 }];
      const b = [{ id: 7n, score: 0.5, shard: 1 }, { id: 8, score: -1, payload: { x: 1 }, shard: 1 }];
      assert.deepEqual(mod.merge([a, b], 10), [b[1], a[0], b[0], a[1]]);
      assert.deepEqual(mod.merge([a, b], 2), [b[1], a[0]]);
      assert.deepEqual(mod.merge([], 3), []);
      assert.deepEqual(mod.merge([a], 0), []);
    });
  });
}
