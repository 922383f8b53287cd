// The browser demo (web-demo/) in real headless Chromium (Debian's
// /usr/bin/chromium driven by playwright-core): the page loads peer fixtures
// over HTTP from 127.0.0.1, shows the recorded shard table, and for recorded
// queries the probed shards it shows (text, highlighted table rows, centroid
// markers) equal the recorded routes as num_probes, the routing context or
// the shard ids change; live search on a host shows each hit's shard, and
// its payload filter is checked in the page (a bad one never leaves it),
// offered as examples built from the payloads seen, and each hit is marked
// with whether it matches (checked here by an evaluator independent of the
// wasm package). Screenshots go to tests/web/artifacts/.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { chromium } from 'playwright-core';

import { matchesJs } from '../wasm/filters.mjs';
import { ROOT, fixturesDir, loadBuilds, loadCase, serve } from '../wasm/helpers.mjs';
import { postJson, startHost } from '../wasm/hosts.mjs';

// The wasm package in Node: the canonical form of a filter, to compare the
// page's requests with.
const [{ mod: wasm }] = await loadBuilds();

const CHROMIUM = process.env.SHARDVEC_CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = path.join(ROOT, 'tests/web/artifacts');
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

let server;
let context;
let profile;
const problems = [];

before(async () => {
  assert.ok(fs.existsSync(path.join(ROOT, 'web-demo/pkg/shardvec_wasm_bg.wasm')), 'web-demo/pkg is built (bash scripts/wasm.sh)');
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  server = await serve({ '/peer': fixturesDir(), '/': path.join(ROOT, 'web-demo') });
  profile = fs.mkdtempSync(path.join(os.tmpdir(), 'shardvec-chromium-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    viewport: { width: 1500, height: 1000 },
    deviceScaleFactor: 1,
  });
});

after(async () => {
  await context?.close();
  await server?.close();
  if (profile) fs.rmSync(profile, { recursive: true, force: true });
});

async function openPage(query = '', url = `${server.url}/index.html`) {
  const page = await context.newPage();
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  // Nothing but the loopback server is ever requested.
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (u.protocol !== 'data:' && u.hostname !== '127.0.0.1') problems.push(`request to ${r.url()}`);
  });
  await page.goto(`${url}${query}`);
  await page.evaluate(() => window.demo.ready);
  return page;
}

/** A full-page screenshot, without a leftover tooltip. */
async function shot(page, name) {
  await page.mouse.move(2, 2);
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}

async function waitReady(page) {
  await page.waitForFunction(() => ['ready', 'error'].includes(document.body.dataset.state));
  const state = await page.evaluate(() => document.body.dataset.state);
  assert.equal(state, 'ready', await page.textContent('#status'));
}

/** The shard table as shown: [{db_id, vector_count}] and the probed rows. */
async function shownShards(page) {
  return page.$$eval('#shard-table tbody tr', (trs) =>
    trs.map((tr) => ({
      db_id: Number(tr.dataset.shard),
      vector_count: Number(tr.querySelector('.count').dataset.count),
      probed: tr.classList.contains('probed'),
    })),
  );
}

async function shownProbed(page) {
  return JSON.parse(await page.getAttribute('#probed', 'data-shards'));
}

async function checkShardTable(page, c) {
  const rows = await shownShards(page);
  assert.deepEqual(
    rows.map(({ db_id, vector_count }) => ({ db_id, vector_count })),
    c.recorded.shards.map(({ db_id, vector_count }) => ({ db_id, vector_count })),
  );
}

/** After a route is shown: the same shards as text, as highlighted table
 * rows, and (CLUSTER) as highlighted centroids. */
async function checkShown(page, want, what) {
  assert.deepEqual(await shownProbed(page), want, what);
  assert.deepEqual(await page.evaluate(() => window.demo.probed), want, `${what}: demo.probed`);
  const rows = await shownShards(page);
  assert.deepEqual(
    rows.filter((r) => r.probed).map((r) => r.db_id),
    [...want].sort((a, b) => a - b),
    `${what}: highlighted rows`,
  );
  const centroids = await page.$$eval('#centroids .centroid.probed', (cs) => cs.map((c) => Number(c.dataset.c)));
  if (centroids.length || (await page.$('#centroids .centroid'))) {
    assert.deepEqual(centroids, [...want].sort((a, b) => a - b), `${what}: highlighted centroids`);
  }
  const text = (await page.textContent('#probed')).trim();
  assert.equal(text, want.join(', '), `${what}: text`);
}

/** Routes recorded vector queries by setting the query and moving the slider. */
async function checkVectorRoutes(page, c, limit = 12) {
  const queries = c.recorded.queries.filter((q) => q.route).slice(0, limit);
  assert.ok(queries.length >= 6);
  for (const [i, q] of queries.entries()) {
    await page.evaluate((v) => window.demo.setQuery(v), q.query);
    const probes = q.args.num_probes ?? (await page.evaluate(() => window.demo.snapshot.defaultProbes));
    await page.locator('#num-probes').fill(String(probes));
    assert.equal(await page.textContent('#num-probes-value'), String(probes));
    await checkShown(page, q.route, `${c.name} query ${i} (num_probes ${probes})`);
  }
}

describe('web demo in headless Chromium', () => {
  test('CLUSTER: sqlitevec_cluster_cosine from ?snapshot=', async () => {
    const c = loadCase('sqlitevec_cluster_cosine');
    const page = await openPage(`?snapshot=${encodeURIComponent(`${server.url}/peer/${c.name}`)}`);
    await waitReady(page);
    await checkShardTable(page, c);
    assert.match(await page.textContent('#info'), /CLUSTER/);
    assert.equal(await page.$$eval('#centroids .centroid', (cs) => cs.length), c.recorded.snapshot_info.num_dbs);
    assert.ok((await page.$$eval('#points .pt', (ps) => ps.length)) >= 500, 'sample points drawn');
    await checkVectorRoutes(page, c);
    // The recorded query picker shows agreement with the recorded route.
    await page.selectOption('#recorded-query', '1');
    assert.match(await page.textContent('#recorded-check'), /same as the recorded route/);
    // The decision lists every centroid with its distance, probed ones marked.
    const rows = await page.$$eval('#decision tbody tr', (trs) => trs.length);
    assert.equal(rows, c.recorded.snapshot_info.num_dbs);
    // Clicking a sample point makes it the query (and the route follows).
    await page.locator('#points .pt').nth(5).click({ force: true });
    const probed = await shownProbed(page);
    assert.equal(probed.length, Number(await page.textContent('#num-probes-value')));
    await page.evaluate((v) => window.demo.setQuery(v), c.recorded.queries[1].query);
    await page.locator('#num-probes').fill('3');
    await shot(page, c.name);
    await page.close();
  });

  test('LSH: sqlitevec_lsh_l2 through the Load form', async () => {
    const c = loadCase('sqlitevec_lsh_l2');
    const page = await openPage();
    await page.fill('#snapshot-url', `${server.url}/peer/${c.name}`);
    await page.click('#load-button');
    await waitReady(page);
    await checkShardTable(page, c);
    assert.match(await page.textContent('#info'), /LSH/);
    await checkVectorRoutes(page, c);
    // Bits and buckets: one bit per hyperplane, the code, the probed buckets.
    assert.equal(await page.$$eval('#decision .bit', (b) => b.length), 8);
    const q = c.recorded.queries.find((x) => x.args.num_probes === 3);
    await page.evaluate((v) => window.demo.setQuery(v), q.query);
    await page.locator('#num-probes').fill('3');
    await checkShown(page, q.route, 'LSH num_probes 3');
    const probedBuckets = await page.$$eval('#decision tbody tr.probed', (trs) => trs.length);
    assert.equal(probedBuckets, 3);
    await shot(page, c.name);
    await page.close();
  });

  test('LSH: lancedb_lsh_cosine, more probes than distinct buckets', async () => {
    const c = loadCase('lancedb_lsh_cosine');
    const page = await openPage(`?snapshot=${encodeURIComponent(`${server.url}/peer/${c.name}`)}`);
    await waitReady(page);
    await checkShardTable(page, c);
    await checkVectorRoutes(page, c, 6);
    await page.close();
  });

  test('CEL: sqlitevec_cel_hash with the routing-context editor', async () => {
    const c = loadCase('sqlitevec_cel_hash');
    const page = await openPage(`?snapshot=${encodeURIComponent(`${server.url}/peer/${c.name}`)}`);
    await waitReady(page);
    await checkShardTable(page, c);
    assert.ok(await page.isVisible('#routing-context'));
    assert.ok(await page.isDisabled('#num-probes'));
    for (const [i, q] of c.recorded.queries.entries()) {
      await page.fill('#routing-context', JSON.stringify(q.args.routing_context));
      await page.click('#apply-context');
      await checkShown(page, q.route, `${c.name} query ${i} ${JSON.stringify(q.args.routing_context)}`);
      assert.match(await page.textContent('#decision'), /shard_hash\(tenant\) % 5u/);
    }
    // A context that does not type-check shows the core's error, not a crash.
    await page.fill('#routing-context', '{"tenant": 7}');
    await page.click('#apply-context');
    assert.match(await page.textContent('#decision .error'), /CEL variable `tenant` must be string/);
    assert.deepEqual(await shownProbed(page), []);
    // Invalid JSON is reported next to the editor.
    await page.fill('#routing-context', '{tenant');
    await page.click('#apply-context');
    assert.match(await page.textContent('#context-error'), /Not valid JSON/);
    const q = c.recorded.queries[2];
    await page.fill('#routing-context', JSON.stringify(q.args.routing_context));
    await page.click('#apply-context');
    await checkShown(page, q.route, 'CEL again');
    await shot(page, c.name);
    await page.close();
  });

  test('CEL: sqlitevec_cel_categorical', async () => {
    const c = loadCase('sqlitevec_cel_categorical');
    const page = await openPage(`?snapshot=${encodeURIComponent(`${server.url}/peer/${c.name}`)}`);
    await waitReady(page);
    await checkShardTable(page, c);
    for (const q of c.recorded.queries.slice(0, 6)) {
      await page.evaluate((ctx) => window.demo.setRoutingContext(ctx), q.args.routing_context);
      await checkShown(page, q.route, JSON.stringify(q.args.routing_context));
    }
    await page.close();
  });

  test('EXPLICIT: sqlitevec_explicit_cosine with the shard ids field', async () => {
    const c = loadCase('sqlitevec_explicit_cosine');
    const page = await openPage(`?snapshot=${encodeURIComponent(`${server.url}/peer/${c.name}`)}`);
    await waitReady(page);
    await checkShardTable(page, c);
    for (const q of c.recorded.queries.slice(0, 4)) {
      await page.fill('#shard-ids', q.args.shard_ids.join(', '));
      await page.locator('#shard-ids').press('Enter');
      await page.locator('#shard-ids').blur();
      await checkShown(page, q.args.shard_ids, `shard_ids ${q.args.shard_ids}`);
    }
    await page.fill('#shard-ids', '3, 1, 3');
    await page.locator('#shard-ids').blur();
    await checkShown(page, [3, 1], 'duplicates dropped');
    await page.fill('#shard-ids', '9');
    await page.locator('#shard-ids').blur();
    assert.match(await page.textContent('#decision .error'), /shard id 9 is out of range: the snapshot has 4 shards/);
    await page.close();
  });

  test('live search without a host server fails visibly', async () => {
    const c = loadCase('lancedb_cluster_dot');
    const page = await openPage(`?snapshot=${encodeURIComponent(`${server.url}/peer/${c.name}`)}`);
    await waitReady(page);
    await checkShardTable(page, c);
    await checkVectorRoutes(page, c, 6);
    // No host URL.
    await page.click('#search-button');
    assert.match(await page.textContent('#search-output .error'), /Set the host URL/);
    // A host that does not answer (a closed port on loopback).
    const tmp = await serve({});
    const dead = tmp.url;
    await tmp.close();
    await page.fill('#host-url', dead);
    await page.click('#search-button');
    await page.waitForSelector('#search-output .error');
    assert.match(await page.textContent('#search-output .error'), new RegExp(`Search failed: POST ${dead}/v1/search: `));
    // A server without the endpoint: the HTTP status is shown.
    await page.fill('#host-url', server.url);
    await page.click('#search-button');
    await page.waitForFunction(() => /HTTP 404/.test(document.querySelector('#search-output')?.textContent ?? ''));
    await shot(page, c.name);
    // A snapshot URL that does not exist: the error names it.
    await page.fill('#snapshot-url', `${server.url}/peer/nope`);
    await page.click('#load-button');
    await page.waitForFunction(() => document.body.dataset.state === 'error');
    assert.match(await page.textContent('#status'), new RegExp(`GET ${server.url}/peer/nope/_CURRENT: HTTP 404`));
    await page.close();
  });

  test('served by a shardvec host: its snapshot, and live search on it', async () => {
    const c = loadCase('sqlitevec_cluster_cosine');
    const host = await startHost(c.dir, { args: ['--demo-dir', path.join(ROOT, 'web-demo')] });
    try {
      const page = await openPage('', `${host.url}/demo/`);
      await waitReady(page);
      await checkShardTable(page, c);
      assert.equal(await page.inputValue('#host-url'), host.url);
      await checkVectorRoutes(page, c, 6);
      const q = c.recorded.queries[0];
      await page.evaluate((v) => window.demo.setQuery(v), q.query);
      await page.locator('#top-k').fill('7');
      const [resp] = await Promise.all([
        page.waitForResponse((r) => r.url() === `${host.url}/v1/search`),
        page.click('#search-button'),
      ]);
      const answer = await resp.json();
      assert.equal(resp.status(), 200, JSON.stringify(answer));
      await page.waitForSelector('#search-output table');
      const shown = await page.$$eval('#search-output tbody tr', (trs) => trs.map((tr) => tr.children[1].textContent));
      assert.deepEqual(shown, answer.results.map((r) => String(r.id)));
      assert.equal(shown.length, 7);
      // The host's answer to the page is its answer to anyone.
      const direct = await postJson(`${host.url}/v1/search`, resp.request().postDataJSON());
      assert.deepEqual(direct.body.results, answer.results);
      await shot(page, 'served-by-host');
      await page.close();
    } finally {
      await host.stop();
    }
  });

  test('example filters come from the recorded results\' payloads', async () => {
    const c = loadCase('sqlitevec_lsh_l2');
    const page = await openPage(`?snapshot=${encodeURIComponent(`${server.url}/peer/${c.name}`)}`);
    await waitReady(page);
    const examples = await page.$$eval('#filter-examples .chip', (cs) => cs.map((b) => JSON.parse(b.dataset.filter)));
    assert.ok(examples.length >= 4, JSON.stringify(examples));
    assert.deepEqual(examples, await page.evaluate(() => window.demo.filterExamples));
    // Each is a valid filter that some recorded hit matches.
    const recorded = c.recorded.queries.flatMap((q) => q.results);
    for (const f of examples) {
      wasm.Snapshot.parseFilter(f);
      assert.ok(recorded.some((h) => matchesJs(f, h.id, h.payload)), `${JSON.stringify(f)} matches a recorded hit`);
    }
    const fields = new Set(recorded.flatMap((h) => Object.keys(h.payload ?? {})));
    const used = new Set(examples.flatMap((f) => JSON.stringify(f).match(/"[^"$]+"(?=:)/g) ?? []).map((k) => k.slice(1, -1)));
    assert.ok([...used].every((k) => fields.has(k)), `fields ${[...used]} are payload fields ${[...fields]}`);
    // Clicking one puts it in the box, where it parses.
    await page.locator('#filter-examples .chip').nth(1).click();
    assert.deepEqual(JSON.parse(await page.inputValue('#filter')), examples[1]);
    assert.deepEqual(await page.evaluate(() => window.demo.filter), { filter: wasm.Snapshot.parseFilter(examples[1]) });
    assert.equal(await page.textContent('#filter-error'), '');
    await page.close();
  });

  test('filtered live search on a host: shard of each hit, match marks, errors in the page', async () => {
    const c = loadCase('sqlitevec_cluster_cosine');
    const host = await startHost(c.dir, { args: ['--demo-dir', path.join(ROOT, 'web-demo')] });
    try {
      const page = await openPage('', `${host.url}/demo/`);
      await waitReady(page);
      const searches = [];
      page.on('request', (r) => {
        if (r.url() === `${host.url}/v1/search`) searches.push(r.postDataJSON());
      });
      /** Searches from the page; returns the host's answer and what the page shows. */
      const run = async () => {
        const before = searches.length;
        const [resp] = await Promise.all([page.waitForResponse((r) => r.url() === `${host.url}/v1/search`), page.click('#search-button')]);
        const answer = await resp.json();
        assert.equal(resp.status(), 200, JSON.stringify(answer));
        assert.equal(searches.length, before + 1);
        await page.waitForSelector('#search-output table');
        const shown = await page.$$eval('#search-output tbody tr', (trs) =>
          trs.map((tr) => ({
            id: tr.children[1].textContent,
            shard: tr.querySelector('td.shard').textContent,
            mark: tr.querySelector('td.mark').textContent,
            matches: tr.querySelector('td.mark').dataset.matches,
          })),
        );
        return { answer, shown, body: searches.at(-1) };
      };
      const marks = () => page.$$eval('#search-output tbody td.mark', (tds) => tds.map((td) => td.dataset.matches ?? td.textContent));

      // Served by the host, the page has no recorded queries: no examples yet.
      assert.equal(await page.$$eval('#filter-examples .chip', (cs) => cs.length), 0);
      const q = c.recorded.queries[4];
      await page.evaluate((v) => window.demo.setQuery(v), q.query);
      await page.locator('#top-k').fill('10');
      const first = await run();
      assert.equal(first.body.filter, undefined);
      // Every hit shows its shard, the host's shard_id; no filter, no marks.
      assert.deepEqual(first.shown.map((r) => r.id), first.answer.results.map((h) => String(h.id)));
      assert.ok(first.answer.results.every((h) => Number.isInteger(h.shard_id) && first.answer.route.includes(h.shard_id)));
      assert.deepEqual(first.shown.map((r) => r.shard), first.answer.results.map((h) => String(h.shard_id)));
      assert.ok(first.shown.every((r) => r.mark === '—'));

      // Examples now come from those results' payloads.
      const examples = await page.$$eval('#filter-examples .chip', (cs) => cs.map((b) => JSON.parse(b.dataset.filter)));
      assert.ok(examples.length >= 3, JSON.stringify(examples));
      for (const f of examples) assert.ok(first.answer.results.some((h) => matchesJs(f, h.id, h.payload)), `${JSON.stringify(f)} matches a shown hit`);

      // Typing a filter re-marks the hits shown, as an independent evaluator does.
      const withPayload = first.answer.results.find((h) => h.payload?.tenant !== undefined);
      assert.ok(withPayload, 'some hit has a payload');
      const f = { $or: [{ tenant: withPayload.payload.tenant }, { label: { $gt: withPayload.payload.label } }] };
      await page.fill('#filter', JSON.stringify(f));
      const want = first.answer.results.map((h) => String(matchesJs(f, h.id, h.payload)));
      assert.deepEqual(await marks(), want);
      assert.ok(want.includes('true'), 'the filter matches some hit');
      if (!want.includes('false')) console.log('note: every hit shown matches the filter');

      // Searching with it: the canonical filter is sent; every hit matches.
      for (const filter of [f, ...examples]) {
        await page.fill('#filter', JSON.stringify(filter));
        const r = await run();
        assert.deepEqual(r.body.filter, wasm.Snapshot.parseFilter(filter));
        assert.ok(r.answer.results.length > 0, JSON.stringify(filter));
        assert.deepEqual(r.shown.map((x) => x.id), r.answer.results.map((h) => String(h.id)));
        assert.deepEqual(r.shown.map((x) => x.shard), r.answer.results.map((h) => String(h.shard_id)));
        for (const h of r.answer.results) assert.ok(matchesJs(filter, h.id, h.payload), `${JSON.stringify(filter)}: ${h.id}`);
        assert.ok(r.shown.every((x) => x.mark === '✓' && x.matches === 'true'));
        // The host's answer to the page is its answer to anyone.
        const direct = await postJson(`${host.url}/v1/search`, r.body);
        assert.deepEqual(direct.body.results, r.answer.results);
      }

      // min_results: the host probes on, the page says how far.
      const selective = { tenant: withPayload.payload.tenant, label: withPayload.payload.label };
      await page.fill('#filter', JSON.stringify(selective));
      await page.locator('#min-results').fill('10');
      await page.locator('#num-probes').fill('1');
      const probed = await run();
      assert.equal(probed.body.min_results, 10);
      assert.equal(probed.body.num_probes, 1);
      assert.ok(probed.answer.probing, JSON.stringify(probed.answer));
      assert.equal(await page.getAttribute('#probing', 'data-stop'), probed.answer.probing.stop);
      assert.match(await page.textContent('#probing'), new RegExp(`${probed.answer.probing.found} found in ${probed.answer.probing.shards_probed} shard`));
      assert.ok(probed.shown.every((x) => x.matches === 'true'));
      await shot(page, 'filtered-search');
      await page.locator('#min-results').fill('');

      // A malformed filter: the core's message under the box as it is
      // typed, the marks unknown, and no request when searching.
      const bad = { i: { $gte: true } };
      await page.fill('#filter', JSON.stringify(bad));
      assert.equal(await page.textContent('#filter-error'), 'Invalid filter — filter.i: $gte needs a number or a string');
      assert.ok(await page.$eval('#filter', (t) => t.classList.contains('invalid')));
      assert.ok((await marks()).every((m) => m === '?'));
      const before = searches.length;
      await page.click('#search-button');
      assert.equal(await page.textContent('#search-output .error'), 'Invalid filter (nothing was sent): filter.i: $gte needs a number or a string');
      // The host refuses that filter with the same words.
      const refused = await postJson(`${host.url}/v1/search`, { query: q.query, filter: bad });
      assert.equal(refused.status, 400);
      assert.equal(refused.body.error.code, 'invalid_filter');
      assert.ok(refused.body.error.message.endsWith('filter.i: $gte needs a number or a string'), refused.body.error.message);
      await page.fill('#filter', '{"tenant": ');
      assert.match(await page.textContent('#filter-error'), /^Invalid filter — filter: not JSON: /);
      await page.click('#search-button');
      assert.match(await page.textContent('#search-output .error'), /nothing was sent\): filter: not JSON/);
      await shot(page, 'filter-error');
      assert.equal(searches.length, before, 'no search was sent with a bad filter');
      // Emptied, the box is no filter again.
      await page.fill('#filter', '');
      assert.equal(await page.textContent('#filter-error'), '');
      const plain = await run();
      assert.equal(plain.body.filter, undefined);
      await page.close();
    } finally {
      await host.stop();
    }
  });

  test('no page errors, no requests beyond 127.0.0.1', () => {
    // Failed loads the tests provoke on purpose show as console errors of
    // the failed requests; anything else is a problem.
    const unexpected = problems.filter((p) => !/Failed to load resource|net::ERR_CONNECTION_REFUSED|Failed to fetch/.test(p));
    assert.deepEqual(unexpected, []);
  });
});
