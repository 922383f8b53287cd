"""Type stubs of shardvec (the extension module's classes re-exported)."""

from datetime import timedelta
from os import PathLike
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np
import numpy.typing as npt

from .errors import (
    ConfigValidationError as ConfigValidationError,
    ConflictError as ConflictError,
    DbAdapterError as DbAdapterError,
    ManifestParseError as ManifestParseError,
    ObjectStoreError as ObjectStoreError,
    ReaderStateError as ReaderStateError,
    ShardvecError as ShardvecError,
    ShardvecTimeoutError as ShardvecTimeoutError,
    SnapshotNotFoundError as SnapshotNotFoundError,
)

__version__: str

Vector = Union[npt.NDArray[np.floating[Any]], Sequence[float]]
Vectors = Union[npt.NDArray[np.floating[Any]], Sequence[Sequence[float]]]
Filter = Union[str, Mapping[str, Any]]
RateLimit = Union[tuple[float, int], Mapping[str, float], Any]

class SearchResult:
    """One hit: ``id`` (int or str), ``score`` (the backend's distance),
    ``payload`` (its JSON payload or None), ``shard_id``."""
    id: Union[int, str]
    score: float
    payload: Any
    shard_id: Optional[int]
    def to_dict(self) -> dict[str, Any]: ...

class SearchResponse:
    results: list[SearchResult]
    num_shards_queried: int
    latency_ms: float
    route: list[int]
    manifest_ref: str
    probing: Optional[dict[str, Any]]
    def __len__(self) -> int: ...

class SnapshotInfo:
    run_id: str
    num_dbs: int
    dim: int
    metric: str
    sharding: str
    manifest_ref: str
    total_vectors: int

class ShardDetail:
    db_id: int
    db_url: Optional[str]
    vector_count: int
    checkpoint_id: Optional[str]

class ReaderHealth:
    status: str
    manifest_ref: Optional[str]
    manifest_age_seconds: Optional[float]
    num_shards: int
    is_closed: bool

class ShardedVectorReader:
    def __init__(
        self,
        s3_prefix: Union[str, PathLike[str]],
        local_root: Union[str, PathLike[str]],
        *,
        max_workers: Optional[int] = None,
        max_fallback_attempts: int = 3,
        max_cached_shards: Optional[int] = None,
        preload_shards: bool = False,
        rate_limiter: Optional[RateLimit] = None,
        s3_connection_options: Optional[Mapping[str, Any]] = None,
        credentials: Optional[Any] = None,
        max_concurrency: Optional[int] = None,
        prefetch_on_refresh: bool = False,
    ) -> None: ...
    def search(
        self,
        query: Vector,
        top_k: int = 10,
        *,
        shard_ids: Optional[Sequence[int]] = None,
        num_probes: Optional[int] = None,
        routing_context: Optional[Mapping[str, Any]] = None,
        filter: Optional[Filter] = None,
        min_results: Optional[int] = None,
        max_probes: Optional[int] = None,
    ) -> SearchResponse: ...
    def batch_search(
        self,
        queries: Vectors,
        top_k: int = 10,
        *,
        shard_ids: Optional[Sequence[int]] = None,
        num_probes: Optional[int] = None,
        routing_context: Optional[Mapping[str, Any]] = None,
        filter: Optional[Filter] = None,
        min_results: Optional[int] = None,
        max_probes: Optional[int] = None,
    ) -> list[SearchResponse]: ...
    def route_vector(
        self,
        query: Vector,
        *,
        num_probes: Optional[int] = None,
        routing_context: Optional[Mapping[str, Any]] = None,
    ) -> list[int]: ...
    def snapshot_info(self) -> SnapshotInfo: ...
    def shard_details(self) -> list[ShardDetail]: ...
    def health(self, staleness_threshold: Union[float, timedelta, None] = None) -> ReaderHealth: ...
    def refresh(self, *, raise_on_error: bool = False) -> bool: ...
    def close(self) -> None: ...
    def __enter__(self) -> "ShardedVectorReader": ...
    def __exit__(self, *exc: Any) -> bool: ...

class AsyncShardedVectorReader:
    @staticmethod
    async def open(
        s3_prefix: Union[str, PathLike[str]],
        local_root: Union[str, PathLike[str]],
        *,
        max_workers: Optional[int] = None,
        max_fallback_attempts: int = 3,
        max_cached_shards: Optional[int] = None,
        preload_shards: bool = False,
        rate_limiter: Optional[RateLimit] = None,
        s3_connection_options: Optional[Mapping[str, Any]] = None,
        credentials: Optional[Any] = None,
        max_concurrency: Optional[int] = None,
        prefetch_on_refresh: bool = False,
    ) -> "AsyncShardedVectorReader": ...
    async def search(
        self,
        query: Vector,
        top_k: int = 10,
        *,
        shard_ids: Optional[Sequence[int]] = None,
        num_probes: Optional[int] = None,
        routing_context: Optional[Mapping[str, Any]] = None,
        filter: Optional[Filter] = None,
        min_results: Optional[int] = None,
        max_probes: Optional[int] = None,
    ) -> SearchResponse: ...
    async def batch_search(
        self,
        queries: Vectors,
        top_k: int = 10,
        *,
        shard_ids: Optional[Sequence[int]] = None,
        num_probes: Optional[int] = None,
        routing_context: Optional[Mapping[str, Any]] = None,
        filter: Optional[Filter] = None,
        min_results: Optional[int] = None,
        max_probes: Optional[int] = None,
    ) -> list[SearchResponse]: ...
    def route_vector(
        self,
        query: Vector,
        *,
        num_probes: Optional[int] = None,
        routing_context: Optional[Mapping[str, Any]] = None,
    ) -> list[int]: ...
    def snapshot_info(self) -> SnapshotInfo: ...
    def shard_details(self) -> list[ShardDetail]: ...
    def health(self, staleness_threshold: Union[float, timedelta, None] = None) -> ReaderHealth: ...
    async def refresh(self, *, raise_on_error: bool = False) -> bool: ...
    async def close(self) -> None: ...
    async def __aenter__(self) -> "AsyncShardedVectorReader": ...
    async def __aexit__(self, *exc: Any) -> bool: ...

def build(
    prefix: Union[str, PathLike[str]],
    vectors: Vectors,
    *,
    num_dbs: int,
    metric: str = "l2",
    strategy: str = "cluster",
    ids: Optional[Sequence[Union[int, str]]] = None,
    payloads: Optional[Sequence[Any]] = None,
    shard_ids: Optional[Sequence[int]] = None,
    num_probes: int = 1,
    num_hash_bits: Optional[int] = None,
    centroids: Optional[Vectors] = None,
    seed: Optional[int] = None,
    train_sample: Optional[int] = None,
    backend: str = "sqlite-vec",
    run_id: Optional[str] = None,
    s3_connection_options: Optional[Mapping[str, Any]] = None,
    credentials: Optional[Any] = None,
    force: bool = False,
) -> dict[str, Any]:
    """Builds and publishes a snapshot from ``vectors`` on one machine;
    returns the build summary (run id, manifest URL, shards, timings)."""

class BuildPlan:
    """A build in progress, shared by the tasks of a distributed build
    (``shardvec.distributed`` drives it on Dask and Ray). Pickles."""

    @staticmethod
    def create(
        prefix: Union[str, PathLike[str]],
        *,
        dim: int,
        num_dbs: int,
        metric: str = "l2",
        strategy: str = "cluster",
        centroids: Optional[Vectors] = None,
        num_hash_bits: Optional[int] = None,
        num_probes: int = 1,
        seed: Optional[int] = None,
        backend: str = "sqlite-vec",
        run_id: Optional[str] = None,
        s3_connection_options: Optional[Mapping[str, Any]] = None,
        credentials: Optional[Any] = None,
        force: bool = False,
    ) -> "BuildPlan": ...
    @staticmethod
    def from_bytes(
        data: bytes,
        *,
        s3_connection_options: Optional[Mapping[str, Any]] = None,
        credentials: Optional[Any] = None,
    ) -> "BuildPlan": ...
    def to_bytes(self) -> bytes: ...
    @property
    def run_id(self) -> str: ...
    @property
    def num_dbs(self) -> int: ...
    @property
    def dim(self) -> int: ...
    @property
    def prefix(self) -> str: ...
    def route(self, vectors: Vectors, *, shard_ids: Optional[Sequence[int]] = None) -> npt.NDArray[Any]:
        """The shard of each row (uint32)."""
    def write_shard(
        self,
        shard_id: int,
        vectors: Vectors,
        ids: Sequence[Union[int, str]],
        payloads: Optional[Sequence[Any]] = None,
    ) -> dict[str, Any]:
        """Writes and uploads one whole shard; returns its entry."""
    def publish(self, entries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Publishes the entries' snapshot (manifest, then ``_CURRENT``)."""
    def abort(self) -> None:
        """Removes every object this build wrote."""

def train_centroids(
    sample: Vectors, num_dbs: int, *, metric: str = "l2", seed: int = 42, max_iter: int = 100
) -> npt.NDArray[Any]:
    """k-means centroids ``[num_dbs, dim]`` (float32) trained on ``sample``."""
