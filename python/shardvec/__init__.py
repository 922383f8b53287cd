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

Writers: ``build`` publishes a snapshot from numpy arrays on one machine;
``BuildPlan`` and ``train_centroids`` are the building blocks of
distributed builds, which ``shardvec.distributed`` runs on Dask
(``build_dask``) and Ray (``build_ray``).
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
    BuildPlan,
    ReaderHealth,
    SearchResponse,
    SearchResult,
    ShardDetail,
    ShardedVectorReader,
    SnapshotInfo,
    __version__,
    build,
    train_centroids,
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
    "BuildPlan",
    "train_centroids",
    "__version__",
]
