// Filtered search at the edge: `Snapshot.parseFilter` / `filterMatches`
// (the core's filter language in wasm) and `EdgeClient.search` with
// `filter`, `minResults` and `maxProbes`, against real native hosts
// (`shardvec serve`). The truth is computed here, independently of the
// wasm code and of the hosts' filter code: filters are evaluated by the JS
// evaluator of ./filters.mjs (written from the language's documentation),
// nearest neighbours by brute force over known vectors (a synthetic
// snapshot built by the native writer from vectors generated here), routes
// and shard assignments from the centroids with the float32 distance of
// docs/format.md, and `minResults` probing by a simulation of the
// documented algorithm.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';

import { caseNames, distanceF32, loadBuilds, loadCase, rows, stableOrder } from './helpers.mjs';
import { postJson, startHost } from './hosts.mjs';
import { buildSnapshot, euclid, matchesJs, recordFetches, sameHits, syntheticRecords, topK } from './filters.mjs';

const builds = await loadBuilds();
const { mod } = builds[0];
// Every request made through the global fetch: the wasm package's (and
// this file's own postJson calls to hosts).
const requests = recordFetches();

const records = syntheticRecords();
const byId = new Map(records.map((r) => [String(r.id), r]));

// Filters over every kind of condition; each is checked against the JS
// evaluator, so none of them has a hard-coded answer.
const FILTERS = [
  {},
  { tenant: 'acme' },
  { i: { $gte: 100, $lt: 300 } },
  { 'meta.lang': 'de', label: { $in: [1, 3] } },
  { tags: 't2' },
  { tags: { $nin: ['t0', 't1'] } },
  { tenant: { $ne: 'acme' }, label: { $nin: [0, 1] } },
  { i: { $exists: false } },
  { $or: [{ label: 4, tenant: 'wayne' }, { $id: { $in: [3, 'doc-9', 'doc-300', 601] } }] },
  { $not: { label: { $lte: 3 } } },
  { label: { $not: { $gt: 1 } } },
  { tenant: { $gt: 'hooli', $lte: 'stark' } },
  { $id: { $gte: 'doc-5' } },
  { $and: [{ 'meta.lang': 'en' }, { i: { $lt: 90 } }] },
  { tenant: 'nobody' },
];

// Malformed filters and the core's message for each (the error path and
// the kind of fault, as core/src/filter documents them).
const BAD = [
  [{ i: { $gte: true } }, 'filter.i: $gte needs a number or a string'],
  [{ $or: [{ i: 1 }, { i: { $gte: [] } }] }, 'filter.$or[1].i: $gte needs a number or a string'],
  [{ tenant: { $regex: 'a' } }, 'filter.tenant: unknown operator $regex'],
  [{ tenant: { $in: 'acme' } }, /^filter\.tenant: \$in needs a list of scalars/],
  [{ $where: 'x' }, 'filter: unknown operator $where'],
  [{ $and: [] }, /^filter\.\$and: \$and needs a non-empty list of filter objects$/],
  [[{ tenant: 'acme' }], 'filter: a filter must be a JSON object'],
  [{ 'meta..lang': 'en' }, /^filter\.meta\.\.lang: empty field name$/],
];

describe('Snapshot.parseFilter and Snapshot.filterMatches', () => {
  for (const { name: build, mod: m } of builds) {
    test(`${build}: canonical JSON, and errors naming the place at fault`, () => {
      for (const f of FILTERS) {
        const canonical = m.Snapshot.parseFilter(f);
        assert.deepEqual(m.Snapshot.parseFilter(canonical), canonical, JSON.stringify(f));
        assert.deepEqual(m.Snapshot.parseFilter(JSON.stringify(f)), canonical, 'the JSON text parses as the object');
      }
      // Equal filters written differently have one canonical form.
      assert.deepEqual(m.Snapshot.parseFilter({ tenant: 'acme' }), m.Snapshot.parseFilter({ $and: [{ tenant: { $eq: 'acme' } }] }));
      assert.deepEqual(m.Snapshot.parseFilter({ t: { $in: ['b', 'a', 'b', 2] } }), m.Snapshot.parseFilter({ t: { $in: [2, 'a', 'b'] } }));
      for (const [f, message] of BAD) {
        assert.throws(() => m.Snapshot.parseFilter(f), (e) => {
          assert.ok(e instanceof Error && !(e instanceof WebAssembly.RuntimeError), e.message);
          if (message instanceof RegExp) assert.match(e.message, message);
          else assert.equal(e.message, message);
          return true;
        });
      }
      assert.throws(() => m.Snapshot.parseFilter('{"tenant": '), /^Error: filter: not JSON: /);
      assert.throws(() => m.Snapshot.parseFilter({ i: NaN }), /^Error: filter: not JSON: NaN is not a finite number/);
    });

    test(`${build}: filterMatches agrees with an independent evaluator on every record`, () => {
      let matched = 0;
      for (const f of FILTERS) {
        for (const r of records) {
          const want = matchesJs(f, r.id, r.payload);
          assert.equal(m.Snapshot.filterMatches(f, r.id, r.payload), want, `${JSON.stringify(f)} on ${JSON.stringify(r.payload)} (id ${r.id})`);
          matched += want;
        }
      }
      assert.ok(matched > records.length, 'the filters match something');
      // Types never mix; ids keep their type; BigInt ids are integers.
      assert.equal(m.Snapshot.filterMatches({ i: 5 }, 1, { i: '5' }), false);
      assert.equal(m.Snapshot.filterMatches({ $id: 3 }, '3', null), false);
      assert.equal(m.Snapshot.filterMatches({ $id: 3 }, 3n, undefined), true);
      assert.equal(m.Snapshot.filterMatches({ x: { $exists: false } }, 1, undefined), true);
      assert.throws(() => m.Snapshot.filterMatches({}, 1.5, null), /id must be a string or an integer/);
      assert.throws(() => m.Snapshot.filterMatches({ i: { $gt: null } }, 1, null), /^Error: filter\.i: \$gt needs a number or a string$/);
    });
  }
});

describe('filtered edge search on a snapshot of known vectors', () => {
  let built;
  let hosts;
  let snapshot;
  let edge;
  let centroids;
  let shardOf;
  const numDbs = 6;

  before(async () => {
    built = buildSnapshot(records, ['--strategy', 'cluster', '--num-dbs', String(numDbs), '--metric', 'l2', '--num-probes', '1']);
    hosts = {
      a: await startHost(built.prefix, { shards: '0-2' }),
      b: await startHost(built.prefix, { shards: '3-5' }),
      whole: await startHost(built.prefix),
    };
    snapshot = await mod.Snapshot.fromHost(hosts.a.url);
    edge = new mod.EdgeClient({
      hosts: [
        { url: hosts.a.url, shards: [0, 1, 2] },
        { url: hosts.b.url, shards: [3, 4, 5] },
      ],
      snapshot,
    });
    // Routing order and shard assignment from the centroids, in JS: the
    // writer puts each record in its nearest centroid's shard.
    centroids = rows(snapshot.centroids(), snapshot.dim);
    assert.equal(centroids.length, numDbs);
    shardOf = new Map(records.map((r) => [String(r.id), routeOrder(r.vector)[0]]));
  });
  after(async () => {
    await Promise.all(Object.values(hosts ?? {}).map((h) => h.stop()));
    if (built) fs.rmSync(built.dir, { recursive: true, force: true });
  });

  /** Every shard, nearest centroid first (float32 distances, stable ties). */
  const routeOrder = (q) => stableOrder(centroids.map((c) => distanceF32('l2', Float32Array.from(q), c)));

  /** Queries: records' vectors moved a little, and two points between blobs. */
  const queries = () => {
    const out = [0, 77, 152, 311, 500, 699].map((i) => records[i].vector.map((x, j) => Math.fround(x + ((i + j) % 5) * 0.05 - 0.1)));
    out.push(records[3].vector.map((x, j) => Math.fround((x + records[4].vector[j]) / 2)));
    out.push(records[10].vector.map((x, j) => Math.fround((x + records[17].vector[j]) / 2)));
    return out;
  };

  /** The exact filtered top-k over the records of `shards`. */
  const bruteForce = (q, f, shards, k) =>
    topK(
      records.filter((r) => shards.includes(shardOf.get(String(r.id))) && matchesJs(f, r.id, r.payload)).map((r) => ({ id: r.id, score: euclid(q, r.vector) })),
      k,
    );

  /** What every answer must show, independently of the edge and the host. */
  function checkHits(what, results, f, route) {
    for (const h of results) {
      const r = byId.get(String(h.id));
      assert.ok(r, `${what}: ${h.id} is a record`);
      assert.ok(matchesJs(f, r.id, r.payload), `${what}: ${h.id} ${JSON.stringify(h.payload)} matches ${JSON.stringify(f)}`);
      assert.deepEqual(h.payload ?? null, r.payload ?? null, `${what}: payload of ${h.id}`);
      assert.equal(typeof h.shard_id, 'number', `${what}: ${h.id} has its shard_id`);
      assert.equal(h.shard_id, shardOf.get(String(h.id)), `${what}: shard of ${h.id}`);
      assert.ok(route.includes(h.shard_id), `${what}: shard ${h.shard_id} was probed`);
    }
  }

  test('the edge, the host and brute force agree on every filter, over all shards and routed', async () => {
    let nonEmpty = 0;
    for (const [qi, q] of queries().entries()) {
      const order = routeOrder(q);
      for (const f of FILTERS) {
        for (const [numProbes, topKn] of [
          [numDbs, 10],
          [1, 5],
          [2, 25],
        ]) {
          const what = `query ${qi}, ${JSON.stringify(f)}, num_probes ${numProbes}, top_k ${topKn}`;
          const sentFrom = requests.length;
          const got = await edge.search(Float32Array.from(q), { topK: topKn, numProbes, filter: f });
          const sent = requests.slice(sentFrom);
          const native = await postJson(`${hosts.whole.url}/v1/search`, { query: q, top_k: topKn, num_probes: numProbes, filter: f });
          assert.equal(native.status, 200, JSON.stringify(native.body));
          // The route: the nearest centroids, computed here.
          assert.deepEqual(got.route, order.slice(0, numProbes), what);
          assert.deepEqual(native.body.route, got.route, what);
          // The host's own /v1/search answer, hit for hit (ids, scores,
          // payloads and shard ids).
          assert.deepEqual(got.results, native.body.results, what);
          assert.equal(got.num_shards_queried, native.body.num_shards_queried, what);
          assert.equal(got.probing, undefined, what);
          // Brute force over the probed shards' records.
          sameHits(what, got.results, bruteForce(q, f, got.route, topKn));
          checkHits(what, got.results, f, got.route);
          if (got.results.length) nonEmpty += 1;
          // Each host got the canonical filter, and nothing else was sent.
          assert.ok(sent.length >= 1 && sent.every((r) => r.url.endsWith('/v1/shards/search')), what);
          for (const r of sent) assert.deepEqual(r.body.filter, mod.Snapshot.parseFilter(f), what);
        }
      }
    }
    assert.ok(nonEmpty > FILTERS.length * 10, `most searches find something (${nonEmpty})`);
  });

  test('the filter as JSON text is the same filter', async () => {
    const q = queries()[1];
    const f = { $or: [{ tenant: 'acme' }, { label: { $gte: 3 } }] };
    const asObject = await edge.search(q, { topK: 10, filter: f, numProbes: 2 });
    const asText = await edge.search(q, { topK: 10, filter: JSON.stringify(f), num_probes: 2 });
    assert.deepEqual(asText.results, asObject.results);
    assert.ok(asObject.results.length > 0);
  });

  test('a malformed filter is refused before any request, with the message a host gives', async () => {
    const q = queries()[0];
    for (const [f, message] of BAD) {
      const sentFrom = requests.length;
      let edgeMessage;
      await assert.rejects(edge.search(q, { topK: 5, filter: f }), (e) => {
        assert.ok(e instanceof Error);
        if (message instanceof RegExp) assert.match(e.message, message);
        else assert.equal(e.message, message);
        edgeMessage = e.message;
        return true;
      });
      assert.equal(requests.length, sentFrom, `${JSON.stringify(f)}: no request was made`);
      assert.throws(() => mod.Snapshot.parseFilter(f), (e) => e.message === edgeMessage);
      // A host refuses it with the same words (after its own prefix).
      const native = await postJson(`${hosts.whole.url}/v1/search`, { query: q, top_k: 5, filter: f });
      assert.equal(native.status, 400, JSON.stringify(native.body));
      assert.equal(native.body.error.code, 'invalid_filter');
      assert.ok(native.body.error.message.endsWith(edgeMessage), `${native.body.error.message} vs ${edgeMessage}`);
    }
    const sentFrom = requests.length;
    await assert.rejects(edge.search(q, { filter: '{"tenant": ' }), /^Error: filter: not JSON: /);
    await assert.rejects(edge.search(q, { filter: { i: { $gt: Infinity } } }), /^Error: filter: not JSON: /);
    assert.equal(requests.length, sentFrom);
    // The client still searches afterwards.
    assert.ok((await edge.search(q, { topK: 3, filter: { tenant: 'acme' } })).results.length > 0);
  });

  /**
   * The documented minResults algorithm, simulated over brute-force counts:
   * the routing order up to `limit` shards, the route its prefix, further
   * batches of the routed count until the per-shard hit counts (each at
   * most topK) add up to minResults.
   */
  function simulate(q, f, { numProbes, topKn, minResults, maxProbes }) {
    const limit = Math.min(maxProbes ?? numDbs, numDbs);
    const order = routeOrder(q).slice(0, Math.max(limit, 1));
    const perShard = (s) => Math.min(bruteForce(q, f, [s], topKn).length, topKn);
    let probed = numProbes;
    const found = () => order.slice(0, probed).reduce((n, s) => n + perShard(s), 0);
    while (found() < minResults && probed < order.length) probed = Math.min(probed + numProbes, order.length);
    const n = found();
    const stop = n >= minResults ? 'enough' : probed >= numDbs ? 'all_shards' : 'probe_limit';
    return { route: order.slice(0, probed), probing: { min_results: minResults, found: n, shards_probed: probed, stop } };
  }

  test('minResults probes further in routing order, as the native reader does', async () => {
    const stops = new Set();
    const cases = [
      [{ tenant: 'acme', label: 2 }, { numProbes: 1, topKn: 10, minResults: 10 }],
      [{ tenant: 'acme', label: 2 }, { numProbes: 1, topKn: 10, minResults: 10, maxProbes: 3 }],
      [{ tenant: 'initech', 'meta.lang': 'de' }, { numProbes: 2, topKn: 20, minResults: 20, maxProbes: 5 }],
      [{ tenant: 'nobody' }, { numProbes: 2, topKn: 10, minResults: 1, maxProbes: 5 }],
      [{ tenant: 'nobody' }, { numProbes: 1, topKn: 10, minResults: 1 }],
      [{ i: { $lt: 40 } }, { numProbes: 1, topKn: 8, minResults: 8 }],
      [{}, { numProbes: 2, topKn: 5, minResults: 5 }],
      [{ label: 0 }, { numProbes: 3, topKn: 10, minResults: 0 }],
    ];
    for (const [qi, q] of queries().slice(0, 5).entries()) {
      for (const [f, o] of cases) {
        const what = `query ${qi}, ${JSON.stringify(f)}, ${JSON.stringify(o)}`;
        const want = simulate(q, f, o);
        const got = await edge.search(q, { topK: o.topKn, numProbes: o.numProbes, filter: f, minResults: o.minResults, maxProbes: o.maxProbes });
        assert.deepEqual(got.route, want.route, what);
        assert.deepEqual(got.probing, want.probing, what);
        const held = got.route.filter((s) => records.some((r) => shardOf.get(String(r.id)) === s));
        assert.equal(got.num_shards_queried, held.length, what);
        sameHits(what, got.results, bruteForce(q, f, want.route, o.topKn));
        checkHits(what, got.results, f, got.route);
        // Each probed shard was asked once.
        const asked = got.hosts.flatMap((h) => h.shard_ids).sort((a, b) => a - b);
        assert.deepEqual(asked, [...got.route].sort((a, b) => a - b), what);
        // The host's own answer to the same request.
        const body = { query: q, top_k: o.topKn, num_probes: o.numProbes, filter: f, min_results: o.minResults };
        if (o.maxProbes !== undefined) body.max_probes = o.maxProbes;
        const native = await postJson(`${hosts.whole.url}/v1/search`, body);
        assert.equal(native.status, 200, JSON.stringify(native.body));
        assert.deepEqual(native.body.probing, got.probing, what);
        assert.deepEqual(native.body.route, got.route, what);
        assert.deepEqual(got.results, native.body.results, what);
        stops.add(got.probing.stop);
      }
    }
    assert.deepEqual([...stops].sort(), ['all_shards', 'enough', 'probe_limit']);
  });

  test('minResults with named shards does not probe further (as natively)', async () => {
    const q = queries()[2];
    const got = await edge.search(q, { topK: 10, shardIds: [4, 1], filter: { tenant: 'acme', label: 2 }, minResults: 10 });
    assert.deepEqual(got.route, [4, 1]);
    assert.equal(got.probing, undefined);
    const native = await postJson(`${hosts.whole.url}/v1/search`, { query: q, top_k: 10, shard_ids: [4, 1], filter: { tenant: 'acme', label: 2 }, min_results: 10 });
    assert.deepEqual(got.results, native.body.results);
    assert.equal(native.body.probing, undefined);
  });

  test('minResults and maxProbes errors come before any request', async () => {
    const q = queries()[0];
    const bad = [
      [{ topK: 10, minResults: 11 }, 'minResults 11 is above topK 10', { top_k: 10, min_results: 11 }],
      [{ numProbes: 2, minResults: 1, maxProbes: 1 }, 'invalid request: max_probes 1 is below the 2 shards routed', { num_probes: 2, min_results: 1, max_probes: 1 }],
      [{ minResults: -1 }, /^Error: minResults must be an integer in 0\.\.=4096, got -1$/],
      [{ minResults: 2.5 }, /minResults must be an integer/],
      [{ minResults: 1, maxProbes: 'all' }, /maxProbes must be an integer/],
    ];
    for (const [opts, message, nativeBody] of bad) {
      const sentFrom = requests.length;
      await assert.rejects(edge.search(q, opts), (e) => {
        if (message instanceof RegExp) assert.match(String(e), message);
        else assert.equal(e.message, message);
        return true;
      });
      assert.equal(requests.length, sentFrom, `${JSON.stringify(opts)}: no request was made`);
      if (nativeBody) {
        // The host refuses the same request.
        const native = await postJson(`${hosts.whole.url}/v1/search`, { query: q, ...nativeBody });
        assert.equal(native.status, 400, JSON.stringify(native.body));
      }
    }
  });
});

describe('filtered edge search on the peer fixtures', () => {
  for (const name of caseNames()) {
    test(`${name}: the edge equals one native reader, every hit matches`, async () => {
      const c = loadCase(name);
      const n = c.recorded.snapshot_info.num_dbs;
      const strategy = c.recorded.snapshot_info.sharding;
      const half = Math.ceil(n / 2);
      const hostA = await startHost(c.dir, { shards: `0-${half - 1}` });
      const hostB = await startHost(c.dir, { shards: `${half}-${n - 1}` });
      const whole = await startHost(c.dir, { args: ['--max-top-k', '4096'] });
      try {
        const snapshot = await mod.Snapshot.fromHost(hostA.url);
        const edge = new mod.EdgeClient({
          hosts: [
            { url: hostA.url, shards: [...Array(half).keys()] },
            { url: hostB.url, shards: [...Array(n - half).keys()].map((i) => i + half) },
          ],
          snapshot,
        });
        let nonEmpty = 0;
        for (const [qi, q] of c.recorded.queries.slice(0, 8).entries()) {
          // Filters from the recorded answer's own payloads.
          const first = q.results.find((r) => r.payload && r.payload.tenant !== undefined)?.payload ?? { tenant: 'acme', label: 0 };
          const filters = [
            { tenant: first.tenant },
            { i: { $lt: 500 } },
            { $or: [{ label: first.label }, { $id: { $in: q.results.map((r) => r.id) } }] },
            { label: { $ne: first.label }, tenant: { $in: [first.tenant, 'acme'] } },
            { tenant: first.tenant, label: first.label },
          ];
          const topKn = Math.max(q.top_k, 5);
          for (const f of filters) {
            const what = `${name} query ${qi} ${JSON.stringify(f)}`;
            const got = await edge.search(Float32Array.from(q.query), { ...q.args, topK: topKn, filter: f });
            const native = await postJson(`${whole.url}/v1/search`, { query: q.query, top_k: topKn, ...q.args, filter: f });
            assert.equal(native.status, 200, JSON.stringify(native.body));
            assert.deepEqual(got.results, native.body.results, what);
            assert.deepEqual(got.route, native.body.route, what);
            assert.equal(got.num_shards_queried, native.body.num_shards_queried, what);
            for (const h of got.results) {
              assert.ok(matchesJs(f, h.id, h.payload), `${what}: ${h.id} ${JSON.stringify(h.payload)}`);
              assert.ok(Number.isInteger(h.shard_id) && got.route.includes(h.shard_id), `${what}: shard_id of ${h.id}`);
            }
            if (got.results.length) nonEmpty += 1;
            if (c.recorded.backend === 'sqlite') {
              // Brute force over the probed shards: every row of each (an
              // unfiltered search with top_k above its size), filtered here.
              const all = await postJson(`${whole.url}/v1/shards/search`, { query: q.query, top_k: 4096, shard_ids: got.route });
              assert.equal(all.status, 200, JSON.stringify(all.body));
              const rowsSeen = all.body.shards.flatMap((s) => s.results);
              assert.equal(rowsSeen.length, got.route.reduce((t, s) => t + (c.recorded.shards.find((d) => d.db_id === s)?.vector_count ?? 0), 0), `${what}: every row`);
              const want = topK(rowsSeen.filter((h) => matchesJs(f, h.id, h.payload)), topKn);
              sameHits(what, got.results, want, 0);
            }
            if ((strategy === 'cluster' || strategy === 'lsh') && q.args.shard_ids === undefined) {
              const body = { query: q.query, top_k: topKn, ...q.args, filter: f, min_results: topKn };
              const probed = await edge.search(q.query, { ...q.args, topK: topKn, filter: f, minResults: topKn });
              const nativeProbed = await postJson(`${whole.url}/v1/search`, body);
              assert.equal(nativeProbed.status, 200, JSON.stringify(nativeProbed.body));
              assert.deepEqual(probed.probing, nativeProbed.body.probing, `${what}: probing`);
              assert.deepEqual(probed.route, nativeProbed.body.route, `${what}: probing route`);
              assert.deepEqual(probed.results, nativeProbed.body.results, `${what}: probing results`);
              assert.equal(probed.probing.shards_probed, probed.route.length);
              assert.ok(probed.route.length >= got.route.length);
              assert.deepEqual(probed.route.slice(0, got.route.length), got.route, `${what}: the route is the prefix`);
              for (const h of probed.results) assert.ok(matchesJs(f, h.id, h.payload) && probed.route.includes(h.shard_id), what);
            } else {
              const probed = await edge.search(q.query, { ...q.args, topK: topKn, filter: f, minResults: 1 });
              assert.equal(probed.probing, undefined, `${what}: ${strategy}, ${JSON.stringify(q.args)}: no probing further`);
              assert.deepEqual(probed.route, got.route, what);
            }
          }
        }
        assert.ok(nonEmpty > 0, `${name}: some filtered search finds something`);
      } finally {
        await Promise.all([hostA.stop(), hostB.stop(), whole.stop()]);
      }
    });
  }
});
