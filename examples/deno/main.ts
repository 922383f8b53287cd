// A Deno service in front of shardvec hosts: routes each query in
// WebAssembly, asks only the hosts holding the chosen shards (failing over
// to their replicas) and merges — POST /search answers what a host's
// POST /v1/search answers. Settings are environment variables; see
// ../edge-service/edge-service.js and README.md.
//
//   SHARDVEC_HOSTS='[{"url": "http://127.0.0.1:8080", "shards": [0, 1, 2, 3]}, ...]' \
//     deno serve --allow-net --allow-env --allow-read --port 8000 main.ts

import { EdgeClient, initSync } from './pkg/shardvec_wasm.js';
import { edgeService } from '../edge-service/edge-service.js';

initSync({ module: await Deno.readFile(new URL('./pkg/shardvec_wasm_bg.wasm', import.meta.url)) });
const service = edgeService(EdgeClient);

export default {
  fetch: (request: Request) => service(request, Deno.env.toObject()),
} satisfies Deno.ServeDefaultExport;
