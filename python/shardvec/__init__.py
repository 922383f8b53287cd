"""shardvec: fast readers for sharded vector snapshots.

A drop-in for shardyfusion's readers: snapshots it wrote (sqlite-vec and
LanceDB shards, CLUSTER, LSH, EXPLICIT and CEL routing) read identically,
searched by the Rust library ``shardvec``::

    from shardvec import ShardedVectorReader

    with ShardedVectorReader("s3://bucket/snap", "/var/cache/shardvec") as reader:
        response = reader.search(query, top_k=10)
        for hit in response.results:
            print(hit.id, hit.score, hit.payload)

``AsyncShardedVectorReader`` is the asyncio counterpart
(``reader = await AsyncShardedVectorReader.open(...)``).
"""

from .errors import (
    ConfigValidationError,
    ConflictError,
    DbAdapterError,
    ManifestParseError,
    ObjectStoreError,
    ReaderStateError,
    ShardvecError,
    ShardvecTimeoutError,
    SnapshotNotFoundError,
)
from ._shardvec import (
    AsyncShardedVectorReader,
    ReaderHealth,
    SearchResponse,
    SearchResult,
    ShardDetail,
    ShardedVectorReader,
    SnapshotInfo,
    __version__,
    build,
)

__all__ = [
    "AsyncShardedVectorReader",
    "ShardedVectorReader",
    "SearchResponse",
    "SearchResult",
    "SnapshotInfo",
    "ShardDetail",
    "ReaderHealth",
    "ShardvecError",
    "ConfigValidationError",
    "ReaderStateError",
    "ManifestParseError",
    "DbAdapterError",
    "SnapshotNotFoundError",
    "ConflictError",
    "ObjectStoreError",
    "ShardvecTimeoutError",
    "build",
    "__version__",
]
