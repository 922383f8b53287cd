// Snapshot.open over HTTP when things go wrong: errors name the URL and the
// HTTP status (or the network error); recorded URLs that would leave the
// snapshot are refused with the native reader's message.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { fixturesDir, loadBuilds, loadCase, serve } from './helpers.mjs';

const builds = await loadBuilds();
const cluster = loadCase('sqlitevec_cluster_cosine');
const lsh = loadCase('sqlitevec_lsh_l2');

/** The key of a recorded URL in a case folder. */
const keyOf = (c, url) => url.slice(c.recorded.prefix.length + 1);
const current = (c) => JSON.parse(c.currentText);

/** Replaces `from` by `to` (same length) inside a manifest image: a
 * recorded URL changed in place, the SQLite record otherwise intact. */
function patchManifest(bytes, from, to) {
  assert.equal(from.length, to.length);
  const buf = Buffer.from(bytes);
  const at = buf.indexOf(from);
  assert.ok(at >= 0, `${from} is in the manifest`);
  const out = Buffer.from(buf);
  out.write(to, at, 'latin1');
  return out;
}

async function rejects(promise, message) {
  await assert.rejects(promise, (e) => {
    assert.ok(e instanceof Error);
    if (message instanceof RegExp) assert.match(e.message, message);
    else assert.equal(e.message, message);
    return true;
  });
}

for (const { name: build, mod } of builds) {
  describe(`${build} build: Snapshot.open errors`, () => {
    let server;
    const overrides = new Map();
    const cur = current(cluster);
    const manifestKey = keyOf(cluster, cur.manifest_ref);
    const centroidsRef = `${cluster.recorded.prefix}/vector_meta/run_id=${cur.run_id}/centroids.npy`;
    before(async () => {
      server = await serve({ '/peer': fixturesDir() }, overrides);
      // 1. No _CURRENT at all.
      overrides.set('/gone/_CURRENT', 404);
      // 2. _CURRENT names a manifest that is not there (server error).
      overrides.set('/broken/_CURRENT', cluster.currentText);
      overrides.set(`/broken/${manifestKey}`, 503);
      // 3. _CURRENT names a manifest outside the snapshot.
      overrides.set('/escape/_CURRENT', cluster.currentText.replace('/manifests/', '/manifests/../../x/'));
      overrides.set('/elsewhere/_CURRENT', cluster.currentText.replace('/manifests/', '/other/'));
      // 4. The manifest records a centroids URL outside the prefix, with `..`, with `%`.
      for (const [name, to] of [
        ['foreign', centroidsRef.replace('s3://fixtures/', 's3://attacker/')],
        ['dotdot', centroidsRef.replace('/vector_meta/', '/../../../../')],
        ['percent', centroidsRef.replace('/vector_meta/', '/%2e%2e/meta/')],
      ]) {
        overrides.set(`/${name}/_CURRENT`, cluster.currentText);
        overrides.set(`/${name}/${manifestKey}`, patchManifest(cluster.manifestBytes, centroidsRef, to));
      }
      // 5. Garbage where the manifest and the hyperplanes should be.
      overrides.set('/garbage/_CURRENT', cluster.currentText);
      overrides.set(`/garbage/${manifestKey}`, Buffer.from('<html>not a manifest</html>'));
      const lcur = current(lsh);
      overrides.set('/badnpy/_CURRENT', lsh.currentText);
      overrides.set(`/badnpy/${keyOf(lsh, lcur.manifest_ref)}`, Buffer.from(lsh.manifestBytes));
      overrides.set(`/badnpy/vector_meta/run_id=${lcur.run_id}/hyperplanes.npy`, Buffer.from('\x93NUMPY garbage'));
    });
    after(() => server.close());

    test('a missing _CURRENT names the URL and the status', async () => {
      await rejects(mod.Snapshot.open(`${server.url}/gone`), `GET ${server.url}/gone/_CURRENT: HTTP 404 Not Found`);
    });

    test('a failing manifest fetch names the URL and the status', async () => {
      await rejects(
        mod.Snapshot.open(`${server.url}/broken/`),
        `GET ${server.url}/broken/${manifestKey}: HTTP 503 Service Unavailable`,
      );
    });

    test('a manifest outside the snapshot is refused', async () => {
      await rejects(mod.Snapshot.open(`${server.url}/escape`), /^recorded URL s3:\/\/fixtures\/.*\/manifests\/\.\.\/\.\.\/x\/.* is outside the snapshot prefix/);
      await rejects(mod.Snapshot.open(`${server.url}/elsewhere`), /^recorded URL s3:\/\/fixtures\/.*\/other\/.* is outside the snapshot prefix/);
    });

    test('recorded artefact URLs outside the prefix are refused', async () => {
      const prefix = cluster.recorded.prefix;
      await rejects(
        mod.Snapshot.open(`${server.url}/foreign`),
        `recorded URL ${centroidsRef.replace('s3://fixtures/', 's3://attacker/')} is outside the snapshot prefix ${prefix}`,
      );
      await rejects(mod.Snapshot.open(`${server.url}/dotdot`), /^recorded URL s3:\/\/fixtures\/sqlitevec_cluster_cosine\/\.\.\/\.\.\/.* is outside the snapshot prefix/);
      await rejects(mod.Snapshot.open(`${server.url}/percent`), /^recorded URL .*%2e%2e.* is outside the snapshot prefix/);
      // Nothing beyond the snapshot was requested.
      assert.ok(!server.requests.some((p) => p.includes('..') || p.includes('attacker')), server.requests.join('\n'));
    });

    test('unreadable manifests and artefacts name the object', async () => {
      await rejects(
        mod.Snapshot.open(`${server.url}/garbage`),
        `manifest ${cur.manifest_ref} cannot be read: not an SQLite database: missing the 16-byte magic \`SQLite format 3\\0\``,
      );
      const lcur = current(lsh);
      await rejects(
        mod.Snapshot.open(`${server.url}/badnpy`),
        new RegExp(`^routing artefact s3://fixtures/sqlitevec_lsh_l2/vector_meta/run_id=${lcur.run_id}/hyperplanes\\.npy: \\.npy hyperplanes\\.npy: `),
      );
    });

    test('a refused connection names the URL', async () => {
      // A port nothing listens on: bind one, then close it.
      const tmp = await serve({});
      const dead = tmp.url;
      await tmp.close();
      await rejects(mod.Snapshot.open(`${dead}/x`), new RegExp(`^GET ${dead}/x/_CURRENT: `));
    });
  });
}

// A snapshot whose newest manifest is corrupt opens on the previous one, as
// the native reader and the reference do (one core loader): the older
// manifests come from an S3 ListObjectsV2 listing of the base URL, or from
// the caller.
for (const { name: build, mod } of builds) {
  describe(`${build} build: Snapshot.open falls back from a corrupt manifest`, () => {
    let server;
    const overrides = new Map();
    const cur = current(cluster);
    const goodKey = keyOf(cluster, cur.manifest_ref);
    const goodDir = goodKey.split('/')[1];
    const newerDir = '2099-01-01T00:00:00.000000Z_run_id=newer';
    const newerUrl = `${cluster.recorded.prefix}/manifests/${newerDir}/manifest`;
    const newerCurrent = JSON.stringify({ ...cur, manifest_ref: newerUrl, run_id: 'newer' });
    const centroidsKey = `vector_meta/run_id=${cur.run_id}/centroids.npy`;
    /** The snapshot, with a corrupt newer manifest named by _CURRENT, at `/<root>`. */
    const publish = (root) => {
      overrides.set(`${root}/_CURRENT`, newerCurrent);
      overrides.set(`${root}/manifests/${newerDir}/manifest`, Buffer.from('<html>half a manifest</html>'));
      overrides.set(`${root}/${goodKey}`, Buffer.from(cluster.manifestBytes));
      overrides.set(`${root}/${centroidsKey}`, Buffer.from(cluster.centroids));
    };
    before(async () => {
      server = await serve({}, overrides);
      publish('/given');
      // Path-style S3: bucket `bkt`, key prefix `snap/`. The test server
      // ignores the query string, so `/bkt` answers the listing request.
      publish('/bkt/snap');
      overrides.set(
        '/bkt',
        `<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>bkt</Name><Prefix>snap/manifests/</Prefix><KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys><Delimiter>/</Delimiter><IsTruncated>false</IsTruncated><CommonPrefixes><Prefix>snap/manifests/${goodDir}/</Prefix></CommonPrefixes><CommonPrefixes><Prefix>snap/manifests/${newerDir}/</Prefix></CommonPrefixes></ListBucketResult>`,
      );
    });
    after(() => server.close());

    const expectOlder = (snap) => {
      const reference = mod.Snapshot.fromParts(cluster.manifestBytes, cluster.currentText, cluster.centroids, cluster.hyperplanes);
      // The older manifest, named where it was found.
      assert.ok(snap.manifestRef().endsWith(`/${goodKey}`), snap.manifestRef());
      const { manifest_ref: _a, ...info } = snap.info();
      const { manifest_ref: _b, ...want } = reference.info();
      assert.deepEqual(info, want);
      for (const q of cluster.recorded.queries) {
        const query = Float32Array.from(q.query);
        assert.deepEqual(snap.route(query, { numProbes: 2 }), reference.route(query, { numProbes: 2 }));
      }
    };

    test('with the manifests given by the caller', async () => {
      expectOlder(await mod.Snapshot.open(`${server.url}/given`, { manifests: [goodKey] }));
    });

    test('with the manifests listed by an S3 ListObjectsV2 request', async () => {
      expectOlder(await mod.Snapshot.open(`${server.url}/bkt/snap`));
      assert.ok(server.requests.includes('/bkt'), server.requests.join('\n'));
    });

    test('without fallback the corrupt manifest is the error', async () => {
      await rejects(
        mod.Snapshot.open(`${server.url}/bkt/snap`, { maxFallbackAttempts: 0 }),
        /^manifest .*run_id=newer\/manifest cannot be read: not an SQLite database/,
      );
      // And with no listing and no manifests given, the same error.
      await rejects(mod.Snapshot.open(`${server.url}/given`), /^manifest .*run_id=newer\/manifest cannot be read/);
    });
  });
}
