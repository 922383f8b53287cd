// Replicas at the edge, against native `shardvec serve` hosts on
// 127.0.0.1: a replica killed in the middle of a run of searches (every
// search still answers exactly, failing over), a slowed replica (hedging
// bounds the latency; without it the slow host shows), every replica of
// some shards down (an error naming the shards and hosts, or a partial
// answer naming the missing shards), and the circuit breaker (a host
// failing in a row is not asked for a while, then asked again).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { loadBuilds, loadCase } from './helpers.mjs';
import { forward, ids, postJson, reply, scores, startHost, startServer } from './hosts.mjs';

const [{ mod }] = await loadBuilds();
const c = loadCase('sqlitevec_cluster_cosine');
const ALL = [0, 1, 2, 3, 4, 5, 6, 7];
const LOW = [0, 1, 2, 3];
const HIGH = [4, 5, 6, 7];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Every recorded query as edge search options, and its host body. */
const queries = c.recorded.queries.map((q) => ({
  query: q.query,
  options: { ...q.args, topK: q.top_k },
  body: { query: q.query, top_k: q.top_k, ...q.args },
}));

/** What a host serving every shard answers for each query. */
async function expected(url) {
  const out = [];
  for (const q of queries) {
    const r = await postJson(`${url}/v1/search`, q.body);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    out.push(r.body);
  }
  return out;
}

function same(what, got, want) {
  assert.deepEqual(ids(got.results), ids(want.results), what);
  assert.deepEqual(scores(got.results), scores(want.results), what);
  assert.deepEqual(got.route, want.route, what);
  assert.equal(got.num_shards_queried, want.num_shards_queried, what);
}

describe('a replica killed in the middle of a run', () => {
  let a;
  let b;
  let all;
  let want;

  before(async () => {
    [a, b, all] = await Promise.all([
      startHost(c.dir, { shards: '0-3' }),
      startHost(c.dir, { shards: '4-7' }),
      startHost(c.dir),
    ]);
    want = await expected(all.url);
  });
  after(async () => {
    await Promise.all([a.stop(), b.stop(), all.stop()]);
  });

  test('every search still answers exactly; the dead host fails over, then is left out', async () => {
    const snapshot = await mod.Snapshot.fromHost(a.url);
    const edge = new mod.EdgeClient({
      hosts: [
        { url: a.url, shards: LOW },
        { url: b.url, shards: HIGH },
        { url: all.url, shards: ALL },
      ],
      snapshot,
      timeoutMs: 10000,
      // Out for the rest of the run, however long it takes.
      breakerCooldownMs: 600000,
    });
    const reports = [];
    let killedAt = -1;
    // Two rounds of every query, several in flight at a time; host B is
    // killed (SIGKILL) while searches are running.
    const rounds = [...queries, ...queries];
    for (let i = 0; i < rounds.length; i += 4) {
      const batch = rounds.slice(i, i + 4);
      if (i === 24) {
        killedAt = i;
        setTimeout(() => b.kill(), 2);
      }
      const got = await Promise.all(batch.map((q) => edge.search(q.query, q.options)));
      got.forEach((g, j) => {
        const k = (i + j) % queries.length;
        same(`search ${i + j}`, g, want[k]);
        assert.equal(g.partial, false);
        assert.deepEqual(g.missing_shards, []);
        reports.push(...g.hosts.map((h) => ({ ...h, search: i + j })));
      });
    }
    assert.ok(killedAt > 0);
    // Before the kill B answered its shards; after it B's requests failed
    // over to the replica of every shard.
    assert.ok(reports.some((r) => r.url === b.url && r.ok && r.search < killedAt), 'B served before');
    const failed = reports.filter((r) => r.url === b.url && !r.ok);
    assert.ok(failed.length >= 1, 'B failed after the kill');
    const failovers = reports.filter((r) => r.role === 'failover');
    assert.ok(failovers.length >= 1 && failovers.every((r) => r.url === all.url && r.ok), JSON.stringify(failovers));
    // Three failures in a row take B out: the last searches never ask it.
    // (Up to a batch of searches may have chosen it before it was out.)
    assert.ok(failed.length <= 3 + 4, `${failed.length} requests to the dead host`);
    const last = reports.filter((r) => r.search >= rounds.length - 8);
    assert.ok(last.every((r) => r.url !== b.url), 'B is left out once taken out');
    // Load spreads over replicas: the replica of every shard answered
    // first-choice requests too (round robin), before the kill.
    assert.ok(reports.some((r) => r.url === all.url && r.role === 'primary' && r.search < killedAt));
  });
});

describe('a slowed replica', () => {
  let a;
  let b;
  let slow;
  let want;
  const DELAY = 1500;

  before(async () => {
    [a, b] = await Promise.all([startHost(c.dir), startHost(c.dir)]);
    // Host A behind a proxy that holds every search for DELAY ms.
    slow = await startServer(async (req, res, body) => {
      if (req.url.startsWith('/v1/shards/search')) await sleep(DELAY);
      reply(res, await forward(req, body, a.url));
    });
    want = await expected(b.url);
  });
  after(async () => {
    await slow.close();
    await Promise.all([a.stop(), b.stop()]);
  });

  const client = async (extra) =>
    new mod.EdgeClient({
      hosts: [
        { url: slow.url, shards: ALL },
        { url: b.url, shards: ALL },
      ],
      snapshot: await mod.Snapshot.fromHost(b.url),
      timeoutMs: 10000,
      ...extra,
    });

  async function run(edge) {
    const latencies = [];
    const reports = [];
    for (const [i, q] of queries.slice(0, 8).entries()) {
      const started = performance.now();
      const got = await edge.search(q.query, q.options);
      latencies.push(performance.now() - started);
      same(`search ${i}`, got, want[i]);
      reports.push(...got.hosts);
    }
    return { latencies, reports };
  }

  test('hedging after 100 ms bounds every search well below the slow host', async () => {
    const { latencies, reports } = await run(await client({ hedgeAfterMs: 100 }));
    assert.ok(Math.max(...latencies) < DELAY * 0.6, `latencies ${latencies.map(Math.round)}`);
    assert.ok(reports.some((r) => r.role === 'hedge' && r.url === b.url && r.ok), 'hedged to B');
  });

  test('without hedging (the default) the searches that start at the slow host wait for it', async () => {
    const { latencies, reports } = await run(await client({}));
    assert.ok(Math.max(...latencies) >= DELAY * 0.9, `latencies ${latencies.map(Math.round)}`);
    assert.ok(reports.every((r) => r.role === 'primary'));
  });
});

describe('every replica of some shards down', () => {
  let a1;
  let a2;
  let b1;
  let b2;

  before(async () => {
    [a1, a2, b1, b2] = await Promise.all([
      startHost(c.dir, { shards: '0-3' }),
      startHost(c.dir, { shards: '0-3' }),
      startHost(c.dir, { shards: '4-7' }),
      startHost(c.dir, { shards: '4-7' }),
    ]);
  });
  after(async () => {
    await Promise.all([a1, a2, b1, b2].map((h) => h.stop()));
  });

  test('an error naming the shards and every replica, or a partial answer naming them', async () => {
    const q = queries[0];
    const direct = await postJson(`${a1.url}/v1/shards/search`, { query: q.query, top_k: 10, shard_ids: LOW });
    const fromLow = mod.merge(direct.body.shards.map((s) => s.results), 10);
    await Promise.all([b1.stop(), b2.stop()]);
    const edge = new mod.EdgeClient({
      hosts: [
        { url: a1.url, shards: LOW },
        { url: b1.url, shards: HIGH },
        { url: a2.url, shards: LOW },
        { url: b2.url, shards: HIGH },
      ],
      snapshot: await mod.Snapshot.fromHost(a1.url),
      breakerFailures: 0,
    });
    await assert.rejects(edge.search(q.query, { shardIds: ALL, topK: 10 }), (e) => {
      assert.equal(e.code, 'request_failed');
      assert.match(e.message, new RegExp(`^shards 4, 5, 6, 7: host ${b1.url}: POST ${b1.url}/v1/shards/search: .*; shards 4, 5, 6, 7: host ${b2.url}: POST`));
      assert.ok(!e.message.includes(a1.url) && !e.message.includes(a2.url), e.message);
      return true;
    });
    // Routed searches that need only shards 0-3 still answer.
    const low = await edge.search(q.query, { shardIds: [2, 0], topK: 5 });
    assert.equal(low.partial, false);

    const partial = await edge.search(q.query, { shardIds: ALL, topK: 10, allowPartial: true });
    assert.equal(partial.partial, true);
    assert.deepEqual(partial.missing_shards, HIGH);
    assert.deepEqual(partial.route, ALL);
    assert.equal(partial.num_shards_queried, 4);
    assert.deepEqual(ids(partial.results), ids(fromLow));
    const failed = partial.hosts.filter((h) => !h.ok);
    assert.deepEqual(failed.map((h) => h.url).sort(), [b1.url, b2.url].sort());
    assert.deepEqual(failed.map((h) => h.role).sort(), ['failover', 'primary']);
  });
});

describe('the circuit breaker', () => {
  let a;
  let b;
  let proxy;
  let down = false;
  let asked = 0;

  before(async () => {
    [a, b] = await Promise.all([startHost(c.dir, { shards: '0-3' }), startHost(c.dir, { shards: '4-7' })]);
    // Host B behind a proxy that can fail every search with 503.
    proxy = await startServer(async (req, res, body) => {
      if (req.url.startsWith('/v1/shards/search')) {
        asked += 1;
        if (down) return res.writeHead(503, { 'content-type': 'application/json' }).end('{"error": {"code": "overloaded", "message": "no"}}');
      }
      reply(res, await forward(req, body, b.url));
    });
  });
  after(async () => {
    await proxy.close();
    await Promise.all([a.stop(), b.stop()]);
  });

  test('a host failing twice in a row is out for the cool-down, then asked again', async () => {
    const edge = new mod.EdgeClient({
      hosts: [
        { url: a.url, shards: LOW },
        { url: proxy.url, shards: HIGH },
      ],
      snapshot: await mod.Snapshot.fromHost(a.url),
      breakerFailures: 2,
      breakerCooldownMs: 600,
    });
    const search = () => edge.search(queries[0].query, { shardIds: [1, 5], topK: 3 });
    assert.equal((await search()).partial, false);
    down = true;
    for (let i = 0; i < 2; i++) await assert.rejects(search(), (e) => e.code === 'request_failed' && /HTTP 503 overloaded/.test(e.message));
    const before = asked;
    await assert.rejects(search(), (e) => {
      assert.equal(e.code, 'host_out');
      assert.match(e.message, new RegExp(`^shard 5: host ${proxy.url}: taken out after 2 failures in a row; asked again in \\d+ ms$`));
      return true;
    });
    down = false;
    await assert.rejects(search(), (e) => e.code === 'host_out');
    assert.equal(asked, before, 'a host taken out is not asked');
    await sleep(700);
    const back = await search();
    assert.equal(back.partial, false);
    assert.equal(asked, before + 1);
    assert.deepEqual(back.hosts.map((h) => h.ok), [true, true]);
  });
});
