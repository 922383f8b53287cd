// Every peer fixture through the wasm package (both builds): loaded from its
// files with `Snapshot.fromParts` and over HTTP with `Snapshot.open`, it
// reports the recorded snapshot info and shard details, and routes every
// recorded query to the recorded route; `explain` agrees with `route`, and
// its distances / projections equal float32 arithmetic done here in JS.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  caseNames,
  distanceF32,
  dotF32,
  fixturesDir,
  fromParts,
  loadBuilds,
  loadCase,
  routeOptions,
  rows,
  serve,
  stableOrder,
} from './helpers.mjs';

const builds = await loadBuilds();
const names = caseNames();

test('nine peer fixture cases', () => {
  assert.equal(names.length, 9);
});

/** The expected route of a recorded query: `route`, or the shards it named. */
function expectedRoute(q) {
  return q.route ?? q.args.shard_ids;
}

/** Checks a snapshot against a case's recorded answers. */
function checkSnapshot(snap, c, mod) {
  const rec = c.recorded;
  assert.deepEqual(snap.info(), rec.snapshot_info);
  assert.deepEqual(snap.shards(), rec.shards);
  assert.equal(snap.manifestRef(), rec.snapshot_info.manifest_ref);
  assert.equal(snap.dim, rec.snapshot_info.dim);
  assert.equal(snap.numDbs, rec.snapshot_info.num_dbs);
  assert.equal(snap.metric, rec.snapshot_info.metric);
  assert.equal(snap.strategy, rec.snapshot_info.sharding);
  assert.equal(snap.recordedPrefix, rec.prefix);
  const meta = snap.vectorMeta();
  assert.equal(meta.dim, rec.snapshot_info.dim);
  assert.equal(meta.sharding_strategy, rec.snapshot_info.sharding);
  assert.equal(snap.defaultProbes, meta.num_probes);

  let routed = 0;
  for (const [i, q] of rec.queries.entries()) {
    const what = `${c.name} query ${i} ${JSON.stringify(q.args)}`;
    const query = Float32Array.from(q.query);
    const opts = routeOptions(q.args);
    const route = snap.route(query, opts);
    assert.ok(Array.isArray(route), `${what}: route is an array`);
    assert.deepEqual(route, expectedRoute(q), what);
    // Also with the snake_case names the host server speaks.
    assert.deepEqual(snap.route(query, q.args), route, `${what} (snake_case)`);
    const ex = snap.explain(query, opts);
    assert.deepEqual(ex.shards, route, `${what}: explain`);
    checkExplanation(snap, ex, query, opts, what);
    // Shards absent from the manifest are skipped at search time.
    const present = route.filter((s) => rec.shards[s].vector_count > 0 || rec.shards[s].db_url);
    assert.equal(present.length, q.num_shards_queried, `${what}: shards searched`);
    routed++;
  }
  return routed;
}

/** The reasons of a decision, against numbers computed in JS. */
function checkExplanation(snap, ex, query, opts, what) {
  if (opts.shardIds) {
    assert.equal(ex.kind, 'explicit', what);
    return;
  }
  const probes = Math.min(opts.numProbes ?? snap.defaultProbes, snap.numDbs);
  switch (ex.kind) {
    case 'cluster': {
      const cs = rows(snap.centroids(), snap.dim);
      const want = cs.map((c) => distanceF32(snap.metric, query, c));
      assert.deepEqual(ex.distances, want, `${what}: distances`);
      assert.deepEqual(ex.ranking, stableOrder(want), `${what}: ranking`);
      assert.deepEqual(ex.shards, ex.ranking.slice(0, probes), `${what}: probed prefix`);
      break;
    }
    case 'lsh': {
      const hs = rows(snap.hyperplanes(), snap.dim);
      const proj = hs.map((h) => dotF32(h, query));
      assert.deepEqual(ex.projections, proj, `${what}: projections`);
      const code = proj.reduce((acc, p, i) => (p > 0 ? acc + 2 ** i : acc), 0);
      assert.equal(ex.code, code, `${what}: code`);
      assert.deepEqual(ex.buckets[0], {
        flipped_bit: null,
        code,
        shard: code % snap.numDbs,
        probed: true,
      });
      for (const b of ex.buckets.slice(1)) {
        assert.equal(b.code, code ^ (1 << b.flipped_bit), `${what}: flipped code`);
        assert.equal(b.shard, b.code % snap.numDbs);
      }
      assert.deepEqual(
        ex.buckets.filter((b) => b.probed).map((b) => b.shard),
        ex.shards,
        `${what}: probed buckets`,
      );
      break;
    }
    case 'cel': {
      const meta = snap.vectorMeta();
      if (meta.routing_values) {
        assert.equal(meta.routing_values[ex.categorical_index], ex.value, what);
        assert.deepEqual(ex.shards, [ex.categorical_index], what);
      } else {
        assert.deepEqual(ex.shards, [Number(ex.value)], what);
      }
      break;
    }
    default:
      assert.fail(`${what}: unexpected explanation ${ex.kind}`);
  }
}

for (const { name: build, mod } of builds) {
  describe(`${build} build: Snapshot.fromParts`, () => {
    let total = 0;
    for (const name of names) {
      test(name, () => {
        const c = loadCase(name);
        total += checkSnapshot(fromParts(mod, c), c, mod);
      });
    }
    test('every recorded query was routed', () => {
      assert.ok(total >= 300, `only ${total} recorded queries`);
    });
  });

  describe(`${build} build: Snapshot.open over HTTP`, () => {
    let server;
    before(async () => {
      // The fixtures served as they are, and a copy "mirrored" under
      // another path: recorded s3:// URLs resolve against either.
      server = await serve({ '/peer': fixturesDir(), '/mirror/deep/copy': fixturesDir() });
    });
    after(() => server.close());
    for (const name of names) {
      test(name, async () => {
        const c = loadCase(name);
        for (const base of [`${server.url}/peer/${name}`, `${server.url}/mirror/deep/copy/${name}/`]) {
          const before = server.requests.length;
          const snap = await mod.Snapshot.open(base);
          checkSnapshot(snap, c, mod);
          assert.equal(snap.baseUrl, base.replace(/\/$/, ''));
          // _CURRENT, the manifest and the strategy's artefacts; nothing else.
          const fetched = server.requests.slice(before);
          const artefacts = (c.centroids ? 1 : 0) + (c.hyperplanes ? 1 : 0);
          assert.equal(fetched.length, 2 + artefacts, fetched.join(', '));
          assert.ok(fetched[0].endsWith(`${name}/_CURRENT`));
          // Shard URLs resolve under the opened URL.
          for (const s of c.recorded.shards.filter((s) => s.db_url)) {
            const url = snap.resolveUrl(s.db_url);
            assert.equal(url, `${base.replace(/\/$/, '')}/${s.db_url.slice(c.recorded.prefix.length + 1)}`);
          }
        }
      });
    }
  });
}
