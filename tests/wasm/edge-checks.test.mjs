// What the edge refuses to trust (issue 15, item 12): routing files of
// another manifest than the one `current` named (a host that refreshes
// between two requests, a load balancer over hosts of two publishes),
// answers for another manifest than the search is pinned to, answers
// larger than `maxResponseBytes` (not read further) and lists longer than
// `topK`. Real `shardvec serve` processes on 127.0.0.1, with plain Node
// servers in front of them doing what a misbehaving host or proxy does.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { loadBuilds, loadCase } from './helpers.mjs';
import { forward, postJson, reply, shardvecBin, startHost, startServer } from './hosts.mjs';

const { mod } = (await loadBuilds())[0];

// Snapshot A: a peer fixture (CLUSTER, 8 shards, dimension 32, cosine).
const A = loadCase('sqlitevec_cluster_cosine');
const refA = JSON.parse(A.currentText).manifest_ref;
const query = A.recorded.queries[0].query;
const ALL = [0, 1, 2, 3, 4, 5, 6, 7];

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'shardvec-edge-checks-'));

/**
 * Publishes a CLUSTER snapshot of the same shape as A (8 shards of
 * dimension 32, cosine) under `prefix` with the writer; resolves to its
 * `{current, ref, run, manifest, centroids}` (the files' bytes).
 */
function publish(prefix, seed) {
  const data = path.join(tmp, `data-${seed}`);
  const bin = shardvecBin();
  execFileSync(bin, ['synth', '--n', '400', '--dim', '32', '--clusters', '8', '--queries', '1', '--seed', String(seed), '--out', data]);
  execFileSync(bin, [
    'build', '--input', path.join(data, 'vectors.npy'), '--prefix', prefix, '--strategy', 'cluster',
    '--num-dbs', '8', '--metric', 'cosine', '--seed', String(seed), '--no-progress',
  ]);
  const current = fs.readFileSync(path.join(prefix, '_CURRENT'), 'utf8');
  const { manifest_ref: ref, run_id: run } = JSON.parse(current);
  return {
    current,
    ref,
    run,
    manifest: new Uint8Array(fs.readFileSync(new URL(ref))),
    centroids: new Uint8Array(fs.readFileSync(path.join(prefix, 'vector_meta', `run_id=${run}`, 'centroids.npy'))),
  };
}

/** Asserts a rejection's `code` and that its message includes `parts`. */
function refused(code, ...parts) {
  return (e) => {
    assert.equal(e.code, code, e.message);
    for (const p of parts) assert.ok(e.message.includes(p), `${JSON.stringify(p)} in ${e.message}`);
    return true;
  };
}

const routing = (req) => req.url.startsWith('/v1/routing/');
const file = (req) => req.url.slice('/v1/routing/'.length);

describe('routing files must belong to the manifest `current` names', () => {
  const flipDir = path.join(tmp, 'flip');
  const bDir = path.join(tmp, 'b');
  let first;
  let second;
  let B;
  let hosts;

  before(async () => {
    // Two publishes of one shape under one prefix; the host starts on the first.
    first = publish(flipDir, 1);
    second = publish(flipDir, 2);
    fs.writeFileSync(path.join(flipDir, '_CURRENT'), first.current);
    B = publish(bDir, 3);
    hosts = { flip: await startHost(flipDir), a: await startHost(A.dir), b: await startHost(bDir) };
  });
  after(async () => {
    await Promise.all(Object.values(hosts).map((h) => h.stop()));
  });

  test('a host that refreshes between two of its routing requests is caught by the ETag', async () => {
    // A mix would be silent: the second run's centroids fit the first run's manifest.
    const mixed = mod.Snapshot.fromParts(first.manifest, first.current, second.centroids);
    const right = mod.Snapshot.fromParts(first.manifest, first.current, first.centroids);
    assert.notDeepEqual(mixed.centroids(), right.centroids());

    let flipped = false;
    const proxy = await startServer(async (req, res, body) => {
      if (file(req) === 'centroids.npy' && !flipped) {
        // The host moves on after `current` and `manifest` were read.
        flipped = true;
        fs.writeFileSync(path.join(flipDir, '_CURRENT'), second.current);
        const r = await postJson(`${hosts.flip.url}/v1/refresh`, {});
        assert.deepEqual(r.body, { changed: true, manifest_ref: second.ref });
      }
      reply(res, await forward(req, body, hosts.flip.url));
    });
    try {
      await assert.rejects(
        mod.Snapshot.fromHost(proxy.url),
        refused(
          'wrong_manifest',
          `${proxy.url}/v1/routing/centroids.npy: centroids.npy belongs to a different manifest than manifest ${first.ref} (ETag "`,
          'retry',
        ),
      );
      assert.ok(flipped);
      // Retried, the load is consistent: the second run, its own centroids.
      const snap = await mod.Snapshot.fromHost(proxy.url);
      assert.equal(snap.manifestRef(), second.ref);
      assert.deepEqual(snap.centroids(), mod.Snapshot.fromParts(second.manifest, second.current, second.centroids).centroids());
    } finally {
      await proxy.close();
    }
  });

  test('a load balancer over hosts of two publishes: by ETag, and by run without ETags', async () => {
    let etags = true;
    // `current` from host A, everything else from host B.
    const lb = await startServer(async (req, res, body) => {
      const answer = await forward(req, body, file(req) === 'current' ? hosts.a.url : hosts.b.url);
      reply(res, answer, etags ? answer.etag : null);
    });
    try {
      await assert.rejects(
        mod.Snapshot.fromHost(lb.url),
        refused('wrong_manifest', `${lb.url}/v1/routing/manifest: manifest belongs to a different manifest than manifest ${refA} (ETag "`),
      );
      etags = false;
      await assert.rejects(
        mod.Snapshot.fromHost(lb.url),
        refused(
          'wrong_manifest',
          `${lb.url}/v1/routing/manifest: manifest belongs to a different manifest than manifest ${refA} (its run is ${B.run}, not ${A.recorded.snapshot_info.run_id})`,
        ),
      );
    } finally {
      await lb.close();
    }
  });

  test('a consistent host loads without ETags and with weak ones', async () => {
    for (const etag of [(e) => null, (e) => `W/${e}`]) {
      const proxy = await startServer(async (req, res, body) => {
        const answer = await forward(req, body, hosts.a.url);
        reply(res, answer, answer.etag === null ? null : etag(answer.etag));
      });
      try {
        const snap = await mod.Snapshot.fromHost(proxy.url);
        assert.equal(snap.manifestRef(), refA);
        assert.deepEqual(snap.route(query, { numProbes: 2 }), mod.Snapshot.fromParts(A.manifestBytes, A.currentText, A.centroids).route(query, { numProbes: 2 }));
      } finally {
        await proxy.close();
      }
    }
  });

  test('an answer for another manifest is refused, still after the reload', async () => {
    // Routing files from host A; searches go to host B without the pin, so
    // B answers 200 for its own manifest.
    const proxy = await startServer(async (req, res, body) => {
      if (routing(req)) return reply(res, await forward(req, body, hosts.a.url));
      const asked = JSON.parse(body);
      delete asked.manifest_ref;
      reply(res, await forward(req, JSON.stringify(asked), hosts.b.url));
    });
    try {
      const edge = new mod.EdgeClient({ hosts: [{ url: proxy.url, shards: ALL }], snapshot: await mod.Snapshot.fromHost(proxy.url) });
      await assert.rejects(
        edge.search(query, { shardIds: [0, 1], topK: 3 }),
        refused(
          'stale_manifest',
          `host ${proxy.url}: answered for manifest ${B.ref}, the search is pinned to manifest ${refA}`,
          'still after reloading the snapshot once',
        ),
      );
    } finally {
      await proxy.close();
    }
  });
});

describe('how much a host may answer', () => {
  let host;
  let snapshot;

  before(async () => {
    host = await startHost(A.dir);
    snapshot = await mod.Snapshot.fromHost(host.url);
  });
  after(async () => {
    await host.stop();
  });

  /** A server with host A's routing files and `search(req, res, body)` for searches. */
  const fakeHost = (search) =>
    startServer(async (req, res, body) => (routing(req) ? reply(res, await forward(req, body, host.url)) : search(req, res, body)));
  const edge = (url, extra = {}) => new mod.EdgeClient({ hosts: [{ url, shards: ALL }], snapshot, timeoutMs: 20000, ...extra });

  test('an endless answer is cut at maxResponseBytes and the connection dropped', async () => {
    let written = 0;
    let closed = false;
    const server = await fakeHost((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.on('close', () => {
        closed = true;
      });
      const chunk = Buffer.alloc(16384, 0x20);
      const pump = () => {
        while (!closed && res.write(chunk)) written += chunk.length;
        if (!closed) res.once('drain', pump);
      };
      res.write('{"shards": [');
      pump();
    });
    try {
      const started = Date.now();
      await assert.rejects(
        edge(server.url, { maxResponseBytes: 65536 }).search(query, { shardIds: [0] }),
        refused('answer_too_large', `host ${server.url}: POST ${server.url}/v1/shards/search: the answer is larger than maxResponseBytes (65536 bytes)`),
      );
      assert.ok(Date.now() - started < 10000);
      // The edge stopped reading: the server sees the connection go.
      for (let i = 0; i < 100 && !closed; i += 1) await new Promise((r) => setTimeout(r, 50));
      assert.ok(closed, 'the connection was closed');
      assert.ok(written < 64 * 1024 * 1024, `${written} bytes written before the close`);
    } finally {
      await server.close();
    }
  });

  test('a declared Content-Length over the limit is refused before the body comes', async () => {
    const server = await fakeHost((req, res) => {
      // Declares 40 MB (over the default limit), sends 12 bytes, then nothing.
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '40000000' });
      res.write('{"shards": [');
    });
    try {
      const started = Date.now();
      await assert.rejects(
        edge(server.url).search(query, { shardIds: [0] }),
        // The documented default: 1000 hits of 32 KiB.
        refused('answer_too_large', 'maxResponseBytes (32768000 bytes)'),
      );
      assert.ok(Date.now() - started < 10000, 'refused without waiting for the body');
    } finally {
      await server.close();
    }
  });

  test('an answer within the limit is read whole; a bad limit is refused', async () => {
    const got = await edge(host.url, { maxResponseBytes: 200000 }).search(query, { shardIds: ALL, topK: 10 });
    const native = await postJson(`${host.url}/v1/search`, { query, top_k: 10, shard_ids: ALL });
    assert.deepEqual(got.results.map((r) => String(r.id)), native.body.results.map((r) => String(r.id)));
    for (const bad of [0, -1, 1.5, 'x', 2 ** 32]) {
      assert.throws(() => edge(host.url, { maxResponseBytes: bad }), /maxResponseBytes must be an integer in 1\.\.=4294967295/);
    }
  });

  test('more hits than topK are refused', async () => {
    // The proxy asks the real host for 10 hits when the edge asked for 3.
    const server = await fakeHost(async (req, res, body) => {
      const asked = JSON.parse(body);
      asked.top_k = 10;
      reply(res, await forward(req, JSON.stringify(asked), host.url));
    });
    try {
      await assert.rejects(
        edge(server.url).search(query, { shardIds: [1], topK: 3 }),
        refused('too_many_hits', `host ${server.url}: ${server.url}/v1/shards/search: answered 10 hits for shard 1, more than the top 3 asked for`),
      );
    } finally {
      await server.close();
    }
  });
});

describe('a snapshot without its own manifest reference cannot pin an EdgeClient', () => {
  test('fromParts without _CURRENT, or with the _CURRENT of another run', () => {
    const hosts = [{ url: 'http://127.0.0.1:9', shards: ALL }];
    const bare = mod.Snapshot.fromParts(A.manifestBytes, undefined, A.centroids);
    assert.equal(bare.manifestRef(), undefined);
    assert.throws(() => new mod.EdgeClient({ hosts, snapshot: bare }), /snapshot has no manifest reference/);
    const other = loadCase('sqlitevec_lsh_l2');
    assert.throws(
      () => mod.Snapshot.fromParts(A.manifestBytes, other.currentText, A.centroids),
      new RegExp(`^Error: _CURRENT names run ${other.recorded.snapshot_info.run_id} \\(manifest .*\\), the manifest given is run ${A.recorded.snapshot_info.run_id}$`),
    );
  });
});

after(() => fs.rmSync(tmp, { recursive: true, force: true }));
