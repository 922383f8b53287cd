"""shardvec.build: a snapshot from numpy arrays, read back and compared
with a brute force written here."""

import numpy as np
import pytest

from shardvec import ConfigValidationError, ShardedVectorReader, build


def brute_force_l2(vectors, q, k):
    d = np.sqrt(((vectors.astype(np.float64) - q.astype(np.float64)) ** 2).sum(axis=1))
    order = np.argsort(d, kind="stable")[:k]
    return order, d[order]


@pytest.mark.parametrize("strategy", ["cluster", "lsh", "explicit"])
def test_build_then_search_equals_brute_force(strategy, tmp_path):
    rng = np.random.default_rng(7)
    n, dim, num_dbs = 600, 16, 4
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    ids = [f"doc-{i}" if i % 2 else i for i in range(n)]
    payloads = [{"i": i, "even": i % 2 == 0} for i in range(n)]
    extra = {}
    if strategy == "lsh":
        extra["num_hash_bits"] = 2
    if strategy == "explicit":
        extra["shard_ids"] = [i % num_dbs for i in range(n)]
    summary = build(
        str(tmp_path / "snap"), vectors, num_dbs=num_dbs, metric="l2", strategy=strategy,
        ids=ids, payloads=payloads, num_probes=num_dbs, seed=3, **extra,
    )
    assert summary["total_vectors"] == n and summary["num_dbs"] == num_dbs
    with ShardedVectorReader(str(tmp_path / "snap"), str(tmp_path / "cache")) as reader:
        info = reader.snapshot_info()
        assert (info.total_vectors, info.dim, info.metric, info.sharding) == (n, dim, "l2", strategy)
        for qi in range(12):
            q = rng.normal(size=dim).astype(np.float32)
            # Every shard searched (CLUSTER: num_probes = num_dbs; LSH's
            # probes reach one-bit flips only; EXPLICIT needs ids): exact.
            kw = {"shard_ids": list(range(num_dbs))} if strategy != "cluster" else {}
            got = reader.search(q, 5, **kw).results
            order, dist = brute_force_l2(vectors, q, 5)
            assert [h.id for h in got] == [ids[i] for i in order]
            np.testing.assert_allclose([h.score for h in got], dist, rtol=1e-4)
            assert [h.payload for h in got] == [payloads[i] for i in order]


def test_build_refuses_bad_arguments(tmp_path):
    v = np.zeros((10, 4), dtype=np.float32)
    with pytest.raises(ConfigValidationError):
        build(str(tmp_path / "a"), v, num_dbs=2, metric="manhattan")
    with pytest.raises(ConfigValidationError):
        build(str(tmp_path / "b"), v, num_dbs=2, strategy="lsh")
    with pytest.raises(ConfigValidationError):
        build(str(tmp_path / "c"), v, num_dbs=2, ids=[1, 2, 3])
    with pytest.raises(ConfigValidationError):
        build(str(tmp_path / "d"), v, num_dbs=2, payloads=[{}] * 9)
    with pytest.raises(ConfigValidationError):
        build(str(tmp_path / "e"), v, num_dbs=2, backend="faiss")
    # Nothing was published by the refused calls.
    for name in "abcde":
        assert not (tmp_path / name / "_CURRENT").exists()
