// A Cloudflare Worker in front of shardvec hosts: routes each query in
// WebAssembly, asks only the hosts holding the chosen shards (failing over
// to their replicas) and merges — POST /search answers what a host's
// POST /v1/search answers. Settings are wrangler.toml's [vars] and the
// secret SHARDVEC_TOKEN; see ../../edge-service/edge-service.js and README.md.

import { EdgeClient, initSync } from '../pkg/shardvec_wasm.js';
// workerd instantiates wasm only from a module import (a WebAssembly.Module).
import wasmModule from '../pkg/shardvec_wasm_bg.wasm';
import { edgeService } from '../../edge-service/edge-service.js';

initSync({ module: wasmModule });
const service = edgeService(EdgeClient);

export default {
  fetch: (request, env, ctx) => service(request, env, (p) => ctx.waitUntil(p)),
};
