// The HTTP glue both edge examples share (the Cloudflare Worker and the
// Deno service): one EdgeClient per isolate, connected on the first
// request, revalidated now and then, and three routes. Everything else —
// the request's parsing, routing, the fan-out to hosts and replicas, the
// checks of what hosts answer, the merge, the answer's JSON and its
// errors — is the wasm package's (shardvec-core's, the code the hosts
// run).
//
//   POST /search   a host's POST /v1/search body -> the host's answer
//   GET  /healthz  {status, manifest_ref}
//
// Settings (strings, as environment variables give them):
//   SHARDVEC_HOSTS    JSON [{"url": "https://host-a:8080", "shards": [0, 1, 2, 3]}, ...]
//   SHARDVEC_TOKEN    bearer token of the hosts (optional)
//   SHARDVEC_OPTIONS  JSON of more EdgeClient options (optional), e.g.
//                     {"timeoutMs": 2000, "hedgeAfterMs": 50, "allowPartial": true}
//   SHARDVEC_REVALIDATE_SECONDS  how often a request also asks the hosts
//                     whether a new publish is out (default 30; 0: never)

const json = (status, body) =>
  new Response(typeof body === 'string' ? body : JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json' },
  });

const error = (status, code, message) => json(status, { error: { code, message } });

/**
 * A `fetch(request, settings, background)` handler over `EdgeClient` (the
 * wasm package's class, initialised). `settings` maps the names above to
 * strings; `background(promise)` keeps a promise running after the answer
 * (a Worker's `ctx.waitUntil`).
 */
export function edgeService(EdgeClient) {
  let client; // Promise<EdgeClient>
  let checkedAt = 0;

  const clientFor = (settings) => {
    client ??= EdgeClient.connect({
      ...JSON.parse(settings.SHARDVEC_OPTIONS || '{}'),
      hosts: JSON.parse(settings.SHARDVEC_HOSTS || '[]'),
      token: settings.SHARDVEC_TOKEN || undefined,
    }).then(
      (edge) => {
        checkedAt = Date.now();
        return edge;
      },
      (e) => {
        client = undefined; // the next request tries again
        throw e;
      },
    );
    return client;
  };

  return async function fetch(request, settings, background = () => {}) {
    const { pathname } = new URL(request.url);
    if (pathname !== '/search' && pathname !== '/healthz') {
      return error(404, 'not_found', 'no such endpoint');
    }
    let edge;
    try {
      edge = await clientFor(settings);
    } catch (e) {
      console.error('shardvec: no host could be loaded from:', e.message);
      return error(503, e.code ?? 'unavailable', 'no host could be loaded from; details are in the log');
    }
    // The routing files stay in memory; a 304 to the hosts' ETag costs no
    // download, a new publish is loaded (and a host on it would make the
    // next search reload anyway).
    const every = Number(settings.SHARDVEC_REVALIDATE_SECONDS ?? 30) * 1000;
    if (every > 0 && Date.now() - checkedAt > every) {
      checkedAt = Date.now();
      background(edge.revalidate().catch((e) => console.error('shardvec: revalidate:', e.message)));
    }
    if (pathname === '/healthz') {
      return json(200, { status: 'ok', manifest_ref: edge.snapshot.manifestRef() });
    }
    if (request.method !== 'POST') {
      return error(405, 'method_not_allowed', 'POST a search to /search');
    }
    const answer = await edge.handleSearch(new Uint8Array(await request.arrayBuffer()));
    if (answer.detail) console.error('shardvec:', answer.detail);
    return json(answer.status, answer.body);
  };
}
