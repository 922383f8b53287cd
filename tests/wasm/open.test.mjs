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
