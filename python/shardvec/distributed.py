"""Distributed builds: a snapshot written by the tasks of Dask or Ray.

The engine-neutral steps are ``shardvec.BuildPlan``'s (the Rust writer's
building blocks); this module only schedules them:

1. **Sample** (CLUSTER without given centroids): every partition draws a
   seeded sample proportional to its size, so the centroids are trained on
   the whole input, not on its first partition; the driver trains them with
   ``shardvec.train_centroids``.
2. **Plan**: ``BuildPlan.create`` on the driver, shipped to every worker once.
3. **Route**: one task per partition splits it into one piece per shard.
4. **Write**: one task per non-empty shard gathers its pieces (the shuffle)
   and calls ``BuildPlan.write_shard``, which refuses rows routed elsewhere.
5. **Publish** the entries on the driver; if any step fails, the build's
   objects are removed and ``_CURRENT`` is untouched.

A *partition* is a dict ``{"vectors": [n, dim] array, "ids": n ints or
strs, "payloads": n JSON-able values or None (optional), "shard_ids": n
ints (EXPLICIT only)}``. The vectors may be a numpy array (any float
dtype) or an Arrow ``FixedSizeListArray`` (or a chunked one) of floats
(``as_matrix``). With the same centroids (or the same seed and
partitions), a distributed build answers every query exactly like
``shardvec.build`` of the same rows.

The keyword arguments are ``BuildPlan.create``'s (``num_dbs``, ``metric``,
``strategy``, ``centroids``, ``num_hash_bits``, ``num_probes``, ``seed``,
``backend``, ``run_id``, ``s3_connection_options``, ``credentials``,
``force``), plus ``train_sample`` (default 100 000) and ``max_iter``
(default 100) for training. The plan pickles with the store keywords it
was given; to keep credentials out of task payloads, leave ``credentials``
unset and give the workers the ``AWS_*`` environment.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from ._shardvec import (
    DEFAULT_MAX_ITER,
    DEFAULT_SEED,
    DEFAULT_TRAIN_SAMPLE,
    BuildPlan,
    train_centroids,
)

__all__ = ["as_matrix", "build_dask", "build_ray", "sample_partition", "split_partition", "write_pieces"]


def as_matrix(vectors: Any) -> np.ndarray:
    """``vectors`` as an ``[n, dim]`` numpy array: numpy arrays and
    sequences of vectors as they are, Arrow fixed-size lists of floats
    (``pyarrow.FixedSizeListArray`` or ``ChunkedArray``) without a copy
    per row."""
    if hasattr(vectors, "combine_chunks"):  # a pyarrow ChunkedArray
        vectors = vectors.combine_chunks()
    list_size = getattr(getattr(vectors, "type", None), "list_size", None)
    if list_size is not None:  # a pyarrow FixedSizeListArray
        if vectors.null_count:
            raise ValueError(f"{vectors.null_count} null vectors")
        flat = vectors.flatten().to_numpy(zero_copy_only=False)
        return flat.reshape(len(vectors), list_size)
    return np.asarray(vectors)


def _rows(part: Dict[str, Any]) -> int:
    return len(part["vectors"])


def _dim(part: Dict[str, Any]) -> int:
    return int(as_matrix(part["vectors"]).shape[1])


def sample_partition(part: Dict[str, Any], k: int, seed: int, index: int) -> np.ndarray:
    """``k`` rows of partition number ``index``, drawn without replacement
    with a generator seeded by ``(seed, index)``: the same partitions and
    seed give the same sample on any engine."""
    vectors = as_matrix(part["vectors"])
    k = min(k, len(vectors))
    rng = np.random.default_rng([seed, index])
    chosen = np.sort(rng.choice(len(vectors), size=k, replace=False))
    return vectors[chosen]


def _shares(sizes: Sequence[int], total_sample: int) -> List[int]:
    """Each partition's share of the sample, proportional to its rows."""
    total = sum(sizes)
    if total == 0:
        return [0 for _ in sizes]
    return [min(n, math.ceil(total_sample * n / total)) for n in sizes]


def split_partition(plan: BuildPlan, part: Dict[str, Any]) -> List[Optional[Dict[str, Any]]]:
    """Partition ``part`` routed by ``plan``: one piece per shard (None
    where no row goes)."""
    vectors = as_matrix(part["vectors"])
    shard_ids = part.get("shard_ids")
    routes = plan.route(vectors, shard_ids=None if shard_ids is None else list(shard_ids))
    ids = list(part["ids"].tolist() if hasattr(part["ids"], "tolist") else part["ids"])
    if len(ids) != len(vectors):
        raise ValueError(f"{len(ids)} ids for {len(vectors)} vectors")
    payloads = part.get("payloads")
    pieces: List[Optional[Dict[str, Any]]] = [None] * plan.num_dbs
    for shard in np.unique(routes):
        rows = np.flatnonzero(routes == shard)
        pieces[int(shard)] = {
            "vectors": vectors[rows],
            "ids": [ids[i] for i in rows],
            "payloads": None if payloads is None else [payloads[i] for i in rows],
        }
    return pieces


def write_pieces(plan: BuildPlan, shard: int, *pieces: Optional[Dict[str, Any]]) -> Optional[dict]:
    """Shard ``shard`` written from its pieces (one per partition, None for
    none): its entry for ``plan.publish``, or None for an empty shard."""
    pieces = tuple(p for p in pieces if p is not None)
    if not pieces:
        return None
    vectors = np.concatenate([p["vectors"] for p in pieces])
    ids = [i for p in pieces for i in p["ids"]]
    if any(p["payloads"] is not None for p in pieces):
        payloads = [
            x for p in pieces for x in (p["payloads"] if p["payloads"] is not None else [None] * len(p["ids"]))
        ]
    else:
        payloads = None
    return plan.write_shard(shard, vectors, ids, payloads)


def _pick(pieces: List[Any], shard: int) -> Any:
    return pieces[shard]


class _Build:
    """The driver's side, the same for every engine: the engine supplies
    ``run(fn, *args)`` (a task whose arguments may be the results of
    other tasks) and ``gather(results)``."""

    def __init__(self, prefix: str, kwargs: Dict[str, Any]):
        self.prefix = prefix
        self.train_sample = kwargs.pop("train_sample", None) or DEFAULT_TRAIN_SAMPLE
        self.max_iter = kwargs.pop("max_iter", None) or DEFAULT_MAX_ITER
        self.kwargs = kwargs

    def execute(self, parts: List[Any], run, gather, share) -> dict:
        if not parts:
            raise ValueError("no partitions")
        kwargs = dict(self.kwargs)
        num_dbs = kwargs["num_dbs"]
        strategy = kwargs.get("strategy", "cluster")
        seed = kwargs.get("seed")
        seed = DEFAULT_SEED if seed is None else seed
        dim = gather([run(_dim, parts[0])])[0]
        if strategy == "cluster" and kwargs.get("centroids") is None:
            sizes = gather([run(_rows, p) for p in parts])
            shares = _shares(sizes, self.train_sample)
            samples = gather(
                [run(sample_partition, p, k, seed, i) for i, (p, k) in enumerate(zip(parts, shares)) if k > 0]
            )
            kwargs["centroids"] = train_centroids(
                np.concatenate(samples),
                num_dbs,
                metric=kwargs.get("metric", "l2"),
                seed=seed,
                max_iter=self.max_iter,
            )
        plan = BuildPlan.create(self.prefix, dim=dim, **kwargs)
        try:
            shared = share(plan)
            routed = [run(split_partition, shared, p) for p in parts]
            writes = [
                run(write_pieces, shared, shard, *[run(_pick, r, shard) for r in routed])
                for shard in range(num_dbs)
            ]
            entries = [e for e in gather(writes) if e is not None]
            return plan.publish(entries)
        except BaseException:
            plan.abort()
            raise


def build_dask(prefix: str, partitions: Any, *, client: Any = None, **kwargs: Any) -> dict:
    """Builds and publishes a snapshot at ``prefix`` on Dask.

    ``partitions``: a list of partition dicts, of ``dask.delayed`` objects
    or futures that compute to them, or a ``dask.array.Array`` of vectors
    (ids are then the global row numbers). ``client``: a
    ``distributed.Client`` (default: the current one). Returns what
    ``BuildPlan.publish`` returns."""
    import dask
    import dask.array as da
    from distributed import default_client

    client = client or default_client()
    if isinstance(partitions, da.Array):
        partitions = _dask_array_partitions(partitions)
    parts = list(partitions)
    if parts and isinstance(parts[0], dict):
        parts = client.scatter(parts)
    elif parts and dask.is_dask_collection(parts[0]):
        parts = client.compute(parts)

    def run(fn, *args):
        return client.submit(fn, *args, pure=False)

    def share(plan):
        return client.scatter(plan, broadcast=True)

    return _Build(prefix, kwargs).execute(parts, run, client.gather, share)


def _dask_array_partitions(vectors: Any) -> List[Any]:
    import dask

    vectors = vectors.rechunk({1: -1})
    blocks = vectors.to_delayed().ravel()
    offsets = np.cumsum((0,) + vectors.chunks[0][:-1])
    return [dask.delayed(_numbered)(block, int(start)) for block, start in zip(blocks, offsets)]


def _numbered(block: np.ndarray, start: int) -> Dict[str, Any]:
    return {"vectors": block, "ids": list(range(start, start + len(block)))}


def build_ray(prefix: str, partitions: Sequence[Any], **kwargs: Any) -> dict:
    """Builds and publishes a snapshot at ``prefix`` on Ray (``ray.init``
    first). ``partitions``: partition dicts or ``ObjectRef``\\ s to them
    (e.g. ``[ray.put(p) for p in ...]``). Returns what
    ``BuildPlan.publish`` returns."""
    import ray

    parts = [p if isinstance(p, ray.ObjectRef) else ray.put(p) for p in partitions]
    remote = {}

    def run(fn, *args):
        if fn not in remote:
            remote[fn] = ray.remote(fn)
        return remote[fn].remote(*args)

    return _Build(prefix, kwargs).execute(parts, run, ray.get, ray.put)
