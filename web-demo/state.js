// The page's state, shared by every module: the loaded snapshot and what is
// derived from it (shards, centroids, recorded queries, sample vectors, the
// PCA), the current query and routing options, the last routing decision,
// and the last live-search answer.

export const state = {
  wasm: null,
  snap: null,
  url: null,
  info: null,
  shards: [],
  meta: null,
  centroids: [], // Float32Array rows
  queries: [], // recorded queries: {query, args, route?}
  samples: [], // {v: Float32Array, shard}
  pca: null,
  query: null, // Float32Array
  numProbes: 1,
  shardIds: [0],
  routingContext: {},
  recordedIndex: -1,
  explanation: null,
  probed: [],
  routeError: null,
  lastSearch: null, // {doc, results, sent, ms}: the last live-search answer
  seenHits: [], // hits with payloads from live searches (for example filters)
};
