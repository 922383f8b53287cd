// The edge flow: EdgeClient (wasm, in Node) routes, asks only the hosts
// holding the chosen shards (native `shardvec serve` processes on
// 127.0.0.1, each serving half of a fixture's shards) and merges. Its
// answers are compared with one native reader (a third host serving every
// shard, `POST /v1/search`) and with the peer's recorded answers.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { caseNames, loadBuilds, loadCase, sameAsRecorded } from './helpers.mjs';
import { ids, postJson, scores, startHost } from './hosts.mjs';

const builds = await loadBuilds();
const { mod } = builds[0];

/** Search options for the edge from a recorded query (snake_case accepted). */
const edgeOptions = (q) => ({ ...q.args, topK: q.top_k });
const nativeBody = (q) => ({ query: q.query, top_k: q.top_k, ...q.args });

describe('two hosts, each serving half of the shards', () => {
  for (const name of caseNames()) {
    test(`${name}: every recorded query equals one native reader`, async () => {
      const c = loadCase(name);
      const n = c.recorded.snapshot_info.num_dbs;
      const half = Math.ceil(n / 2);
      const first = [...Array(half).keys()];
      const second = [...Array(n - half).keys()].map((i) => i + half);
      const hostA = await startHost(c.dir, { shards: `0-${half - 1}` });
      const hostB = await startHost(c.dir, { shards: `${half}-${n - 1}` });
      const whole = await startHost(c.dir);
      try {
        const snapshot = await mod.Snapshot.fromHost(hostA.url);
        assert.deepEqual(snapshot.info(), mod.Snapshot.fromParts(c.manifestBytes, c.currentText, c.centroids, c.hyperplanes).info());
        const edge = new mod.EdgeClient({
          hosts: [
            { url: hostA.url, shards: first },
            { url: hostB.url, shards: second },
          ],
          snapshot,
        });
        let bothHosts = 0;
        for (const [i, q] of c.recorded.queries.entries()) {
          const what = `${name} query ${i}`;
          const got = await edge.search(Float32Array.from(q.query), edgeOptions(q));
          const native = await postJson(`${whole.url}/v1/search`, nativeBody(q));
          assert.equal(native.status, 200, JSON.stringify(native.body));
          assert.deepEqual(ids(got.results), ids(native.body.results), what);
          assert.deepEqual(scores(got.results), scores(native.body.results), what);
          assert.deepEqual(got.route, native.body.route, what);
          assert.equal(got.num_shards_queried, native.body.num_shards_queried, what);
          assert.equal(got.manifest_ref, native.body.manifest_ref, what);
          // The host's /v1/search answer (core's wire type), plus the edge's own keys.
          assert.deepEqual(
            Object.keys(got).sort(),
            [...Object.keys(native.body), 'hosts', 'partial', 'missing_shards', 'retried'].sort(),
            what,
          );
          assert.ok(got.latency_ms >= 0, what);
          sameAsRecorded(what, got.results, q.results);
          // Each routed, non-empty shard went to the one host serving it.
          for (const h of got.hosts) {
            assert.ok(h.ok && h.status === 200 && h.latency_ms >= 0, `${what}: ${JSON.stringify(h)}`);
            const served = h.url === hostA.url ? first : second;
            assert.ok(h.shard_ids.every((s) => served.includes(s)), `${what}: ${JSON.stringify(h)}`);
          }
          if (got.hosts.length === 2) bothHosts += 1;
          assert.equal(got.partial, false);
          assert.equal(got.retried, false);
        }
        if (n > 1 && c.recorded.snapshot_info.sharding !== 'cel') {
          assert.ok(bothHosts > 0, `${name}: some query needed both hosts`);
        }
      } finally {
        // SIGTERM: each host finishes and exits cleanly.
        const exits = await Promise.all([hostA.stop(), hostB.stop(), whole.stop()]);
        assert.deepEqual(exits.map((e) => e.code), [0, 0, 0]);
      }
    });
  }
});

describe('a refresh while the edge holds the old snapshot', () => {
  // Two publishes of 4 shards under one prefix.
  const older = loadCase('lancedb_lsh_cosine');
  const newer = loadCase('sqlitevec_explicit_cosine');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shardvec-edge-'));
  const currentOf = (c) => c.currentText;
  let hosts;

  before(async () => {
    fs.cpSync(older.dir, dir, { recursive: true });
    fs.cpSync(newer.dir, dir, { recursive: true });
    fs.writeFileSync(path.join(dir, '_CURRENT'), currentOf(older));
    hosts = {
      a: await startHost(dir, { shards: '0-1' }),
      b: await startHost(dir, { shards: '2-3' }),
      whole: await startHost(dir),
    };
  });
  after(async () => {
    await Promise.all(Object.values(hosts).map((h) => h.stop()));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('the stale manifest_ref is refused; the edge reloads and retries once', async () => {
    const snapshot = await mod.Snapshot.fromHost(hosts.a.url);
    const edge = new mod.EdgeClient({
      hosts: [
        { url: hosts.a.url, shards: [0, 1] },
        { url: hosts.b.url, shards: [2, 3] },
      ],
      snapshot,
    });
    const q = newer.recorded.queries.find((x) => x.args.shard_ids && x.args.shard_ids.length > 1);
    const before = await edge.search(q.query, edgeOptions(q));
    assert.equal(before.manifest_ref, JSON.parse(currentOf(older)).manifest_ref);
    assert.equal(before.retried, false);

    fs.writeFileSync(path.join(dir, '_CURRENT'), currentOf(newer));
    for (const h of Object.values(hosts)) {
      const r = await postJson(`${h.url}/v1/refresh`, {});
      assert.deepEqual(r.body, { changed: true, manifest_ref: JSON.parse(currentOf(newer)).manifest_ref });
    }
    // A host refuses the old manifest outright.
    const refused = await postJson(`${hosts.a.url}/v1/shards/search`, {
      query: q.query,
      top_k: 3,
      shard_ids: [0],
      manifest_ref: before.manifest_ref,
    });
    assert.equal(refused.status, 409);
    assert.equal(refused.body.error.code, 'stale_manifest');

    const got = await edge.search(q.query, edgeOptions(q));
    assert.equal(got.retried, true);
    assert.equal(got.manifest_ref, JSON.parse(currentOf(newer)).manifest_ref);
    const native = await postJson(`${hosts.whole.url}/v1/search`, nativeBody(q));
    assert.deepEqual(ids(got.results), ids(native.body.results));
    assert.deepEqual(scores(got.results), scores(native.body.results));
    sameAsRecorded('after reload', got.results, q.results);
    // The client reloaded its own handle; the caller's snapshot is unchanged.
    assert.equal(edge.snapshot.manifestRef(), JSON.parse(currentOf(newer)).manifest_ref);
    assert.equal(snapshot.manifestRef(), before.manifest_ref);
    // The next search needs no retry.
    assert.equal((await edge.search(q.query, edgeOptions(q))).retried, false);
    // Revalidating: nothing new for this client (the host answers 304 to
    // its ETag); a client still on the old publish loads the new one.
    assert.equal(await edge.revalidate(), false);
    const behind = new mod.EdgeClient({ hosts: [{ url: hosts.a.url, shards: [0, 1, 2, 3] }], snapshot });
    assert.equal(await behind.revalidate(), true);
    assert.equal(behind.snapshot.manifestRef(), JSON.parse(currentOf(newer)).manifest_ref);
    assert.equal(await behind.revalidate(), false);
  });

  test('EdgeClient.connect loads from the first host that answers', async () => {
    const hostsList = [
      { url: 'http://127.0.0.1:9', shards: [0, 1, 2, 3] },
      { url: hosts.b.url, shards: [2, 3] },
      { url: hosts.a.url, shards: [0, 1] },
    ];
    const edge = await mod.EdgeClient.connect({ hosts: hostsList });
    assert.equal(edge.snapshot.manifestRef(), JSON.parse(currentOf(newer)).manifest_ref);
    await assert.rejects(mod.EdgeClient.connect({ hosts: [hostsList[0]] }), (e) => {
      assert.equal(e.code, 'request_failed');
      assert.match(e.message, /^host http:\/\/127\.0\.0\.1:9: GET http:\/\/127\.0\.0\.1:9\/v1\/routing\/current: /);
      return true;
    });
  });
});

describe('failures', () => {
  const c = loadCase('sqlitevec_cluster_cosine');
  const tokenFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'shardvec-token-')), 'token');
  fs.writeFileSync(tokenFile, 'edge-secret\n');
  let a;
  let b;
  let snapshot;

  before(async () => {
    a = await startHost(c.dir, { shards: '0-3', args: ['--token-file', tokenFile] });
    b = await startHost(c.dir, { shards: '4-7', args: ['--token-file', tokenFile] });
    snapshot = await mod.Snapshot.fromHost(a.url, 'edge-secret');
  });
  after(async () => {
    await Promise.all([a.stop(), b.stop()]);
  });

  const client = (extra = {}) =>
    new mod.EdgeClient({
      hosts: [
        { url: a.url, shards: [0, 1, 2, 3] },
        { url: b.url, shards: [4, 5, 6, 7] },
      ],
      snapshot,
      token: 'edge-secret',
      ...extra,
    });

  test('options are checked when the client is built', () => {
    const bad = [
      [{ hosts: [], snapshot }, /hosts must be a non-empty array/],
      [{ hosts: [{ url: 'ftp://x', shards: [0] }], snapshot }, /http\(s\) URL/],
      [{ hosts: [{ url: a.url, shards: [8] }], snapshot }, /shard ids below 8/],
      [{ hosts: [{ url: a.url, shards: [0] }], snapshot: {} }, /must be a Snapshot/],
      [{ hosts: [{ url: a.url, shards: [0] }], snapshot, timeoutMs: -1 }, /timeoutMs/],
      [{ hosts: [{ url: a.url, shards: [0] }], snapshot, token: 5 }, /token must be a string/],
      // No _CURRENT: nothing to pin, so hosts could not refuse a stale edge.
      [
        { hosts: [{ url: a.url, shards: [0] }], snapshot: mod.Snapshot.fromParts(c.manifestBytes, undefined, c.centroids, c.hyperplanes) },
        /no manifest reference/,
      ],
    ];
    for (const [opts, re] of bad) assert.throws(() => new mod.EdgeClient(opts), re);
    // Building clients leaves the caller's snapshot usable.
    assert.equal(snapshot.numDbs, 8);
  });

  test('a shard no host serves, a wrong dimension and a NaN fail before any request', async () => {
    const onlyA = new mod.EdgeClient({ hosts: [{ url: a.url, shards: [0, 1, 2, 3] }], snapshot, token: 'edge-secret' });
    await assert.rejects(onlyA.search(c.recorded.queries[0].query, { shardIds: [5] }), /shard 5 .*no host serves it/);
    await assert.rejects(client().search([1, 2, 3]), /dimension/);
    const nan = Float32Array.from(c.recorded.queries[0].query);
    nan[3] = NaN;
    await assert.rejects(client().search(nan), /finite|NaN/);
  });

  test('a wrong token is refused by the host, named in the error', async () => {
    const wrong = client({ token: 'nope' });
    await assert.rejects(wrong.search(c.recorded.queries[0].query, { shardIds: [0] }), (e) => {
      assert.match(e.message, new RegExp(`host ${a.url}: HTTP 401 unauthorized`));
      return true;
    });
  });

  test('a host down fails the search naming it, or gives partial results when asked', async () => {
    const q = c.recorded.queries[0];
    const all = [0, 1, 2, 3, 4, 5, 6, 7];
    const full = await client().search(q.query, { shardIds: all, topK: 10 });
    assert.equal(full.hosts.length, 2);
    // Host A's own shards, merged: what partial results must equal.
    const direct = await postJson(
      `${a.url}/v1/shards/search`,
      { query: q.query, top_k: 10, shard_ids: [0, 1, 2, 3] },
      { authorization: 'Bearer edge-secret' },
    );
    const fromA = mod.merge(direct.body.shards.map((s) => s.results), 10);

    await b.stop();
    await assert.rejects(client().search(q.query, { shardIds: all, topK: 10 }), (e) => {
      assert.match(e.message, new RegExp(`host ${b.url}`));
      return true;
    });
    const partial = await client({ timeoutMs: 5000 }).search(q.query, { shardIds: all, topK: 10, allowPartial: true });
    assert.equal(partial.partial, true);
    const down = partial.hosts.find((h) => h.url === b.url);
    assert.equal(down.ok, false);
    assert.equal(down.status, null);
    assert.match(down.error, /POST/);
    assert.ok(partial.hosts.find((h) => h.url === a.url).ok);
    assert.deepEqual(ids(partial.results), ids(fromA));
    assert.equal(partial.num_shards_queried, 4);
  });

  test('plan shows the shards each host gets, without searching', () => {
    const p = client().plan(c.recorded.queries[0].query, { shardIds: [6, 1, 2] });
    assert.deepEqual(p.route, [6, 1, 2]);
    assert.deepEqual(p.hosts, [
      { url: b.url, shard_ids: [6] },
      { url: a.url, shard_ids: [1, 2] },
    ]);
  });
});
