"""Distributed builds on real engines: a Dask LocalCluster with worker
processes and Ray on this machine, each building a 100k × 128 snapshot in
parallel. With the same centroids, each answers every query exactly like
``shardvec.build`` of the same rows (ids and scores, bit for bit); training
samples every partition; a failing partition publishes nothing."""

import os
import pickle

import numpy as np
import pytest

from shardvec import (
    BuildPlan, ConfigValidationError, ConflictError, ShardedVectorReader, build, train_centroids,
)
from shardvec.distributed import as_matrix, build_dask, build_ray, sample_partition, split_partition

N, DIM, DBS, PARTS = 100_000, 128, 16, 8


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(11)
    centres = rng.normal(size=(40, DIM)).astype(np.float32)
    labels = rng.integers(0, len(centres), size=N)
    vectors = (centres[labels] + 0.35 * rng.normal(size=(N, DIM))).astype(np.float32)
    ids = [f"doc-{i}" if i % 3 == 0 else i for i in range(N)]
    payloads = [{"i": i, "label": int(labels[i])} if i % 2 else None for i in range(N)]
    sample = vectors[rng.choice(N, size=8_000, replace=False)]
    centroids = train_centroids(sample, DBS, metric="cosine", seed=5)
    queries = (centres[rng.integers(0, len(centres), size=60)] + 0.4 * rng.normal(size=(60, DIM))).astype(
        np.float32
    )
    return vectors, ids, payloads, centroids, queries


def partitions(vectors, ids, payloads):
    bounds = np.linspace(0, len(vectors), PARTS + 1).astype(int)
    return [
        {"vectors": vectors[a:b], "ids": ids[a:b], "payloads": payloads[a:b]}
        for a, b in zip(bounds[:-1], bounds[1:])
    ]


@pytest.fixture(scope="module")
def single(data, tmp_path_factory):
    vectors, ids, payloads, centroids, _ = data
    prefix = str(tmp_path_factory.mktemp("single") / "snap")
    build(prefix, vectors, num_dbs=DBS, metric="cosine", ids=ids, payloads=payloads,
          centroids=centroids, num_probes=2)
    return prefix


def answers(prefix, cache, queries):
    with ShardedVectorReader(prefix, str(cache)) as reader:
        out = []
        for q in queries:
            hits = reader.search(q, top_k=10).results
            out.append([(h.id, np.float32(h.score).tobytes(), h.payload) for h in hits])
        return out, reader.snapshot_info().total_vectors


def assert_same_answers(prefix, single, queries, tmp_path):
    got, total = answers(prefix, tmp_path / "c-dist", queries)
    want, want_total = answers(single, tmp_path / "c-single", queries)
    assert total == want_total == N
    assert all(len(hits) == 10 for hits in want)
    assert got == want


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None)
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray")
    # Workers import shardvec from the package folder the tests use.
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": here}})
    yield ray
    ray.shutdown()


def test_dask_build_answers_like_the_single_machine_build(data, single, dask_client, tmp_path):
    vectors, ids, payloads, centroids, queries = data
    parts = partitions(vectors, ids, payloads)
    # Worker processes, not threads: the tasks really run elsewhere.
    pids = dask_client.run(os.getpid)
    assert len(set(pids.values()) - {os.getpid()}) == 2
    summary = build_dask(str(tmp_path / "snap"), parts, client=dask_client, num_dbs=DBS,
                         metric="cosine", centroids=centroids, num_probes=2)
    assert summary["total_vectors"] == N and summary["num_dbs"] == DBS
    assert_same_answers(str(tmp_path / "snap"), single, queries, tmp_path)


def test_ray_build_answers_like_the_single_machine_build(data, single, ray_local, tmp_path):
    vectors, ids, payloads, centroids, queries = data
    parts = [ray_local.put(p) for p in partitions(vectors, ids, payloads)]
    summary = build_ray(str(tmp_path / "snap"), parts, num_dbs=DBS, metric="cosine",
                        centroids=centroids, num_probes=2)
    assert summary["total_vectors"] == N
    assert_same_answers(str(tmp_path / "snap"), single, queries, tmp_path)


def test_dask_array_input_and_training_samples_every_partition(dask_client, tmp_path):
    da = pytest.importorskip("dask.array")
    # Partition p holds only blob p: centroids trained on the first
    # partition alone would all sit in blob 0 and leave most shards empty.
    rng = np.random.default_rng(3)
    blobs, per = 8, 2_000
    centres = 10 * rng.normal(size=(blobs, 16)).astype(np.float32)
    vectors = np.concatenate([c + rng.normal(size=(per, 16)).astype(np.float32) for c in centres])
    arr = da.from_array(vectors, chunks=(per, 16))
    summary = build_dask(str(tmp_path / "snap"), arr, client=dask_client, num_dbs=blobs,
                         metric="l2", train_sample=800, seed=9, num_probes=1)
    assert summary["total_vectors"] == blobs * per
    # The centroids are k-means on a sample of every partition, each
    # drawing its share (800 · 2 000 / 16 000 rows) with a generator seeded
    # by (seed, partition): the sample recomputed here, independently.
    sample = np.concatenate([
        vectors[p * per:(p + 1) * per][np.sort(np.random.default_rng([9, p]).choice(per, 100, replace=False))]
        for p in range(blobs)
    ])
    published = np.load(next((tmp_path / "snap" / "vector_meta").glob("run_id=*/centroids.npy")))
    assert np.array_equal(published, train_centroids(sample, blobs, metric="l2", seed=9))
    with ShardedVectorReader(str(tmp_path / "snap"), str(tmp_path / "cache")) as reader:
        rows = sorted(d.vector_count for d in reader.shard_details())
        # Every shard is used and none holds more than two blobs (trained on
        # partition 0 alone, all centroids would sit in blob 0).
        assert len(rows) == blobs and sum(rows) == blobs * per and max(rows) <= 2 * per, rows
        # Ids are the global row numbers: a row finds itself.
        for i in (0, per + 5, 7 * per + 1999):
            assert reader.search(vectors[i], top_k=1).results[0].id == i
    # The sample itself draws from every partition, proportionally.
    part = {"vectors": vectors[:per], "ids": list(range(per))}
    drawn = sample_partition(part, 100, seed=9, index=0)
    assert drawn.shape == (100, 16)
    assert np.array_equal(drawn, sample_partition(part, 100, seed=9, index=0))
    assert not np.array_equal(drawn, sample_partition(part, 100, seed=9, index=1))


def test_a_failing_partition_publishes_nothing_and_leaves_nothing(dask_client, data, tmp_path):
    vectors, ids, payloads, centroids, _ = data
    parts = partitions(vectors[:4_000], ids[:4_000], payloads[:4_000])
    bad = parts[5]["vectors"].copy()
    bad[7, 3] = np.nan
    parts[5] = dict(parts[5], vectors=bad)
    prefix = tmp_path / "snap"
    with pytest.raises(ConfigValidationError, match="not finite"):
        build_dask(str(prefix), parts, client=dask_client, num_dbs=DBS, metric="cosine",
                   centroids=centroids)
    assert not (prefix / "_CURRENT").exists()
    left = [p for p in prefix.rglob("*") if p.is_file()] if prefix.exists() else []
    assert left == []


def test_the_plan_pickles_and_refuses_misrouted_rows(data, tmp_path):
    vectors, ids, payloads, centroids, _ = data
    plan = BuildPlan.create(str(tmp_path / "snap"), dim=DIM, num_dbs=DBS, metric="cosine",
                            centroids=centroids)
    copy = pickle.loads(pickle.dumps(plan))
    assert (copy.run_id, copy.num_dbs, copy.dim) == (plan.run_id, DBS, DIM)
    routes = plan.route(vectors[:500])
    assert routes.dtype == np.uint32 and routes.shape == (500,)
    assert np.array_equal(copy.route(vectors[:500].astype(np.float64)), routes)
    pieces = split_partition(copy, {"vectors": vectors[:500], "ids": ids[:500]})
    assert sum(len(p["ids"]) for p in pieces if p) == 500
    s = int(routes[0])
    other = int(next(r for r in routes if r != s))
    rows = np.flatnonzero(routes == s)
    stray = np.flatnonzero(routes == other)[:1]
    with pytest.raises(ConfigValidationError, match=f"routes to shard {other}"):
        plan.write_shard(s, vectors[np.concatenate([rows, stray])], list(range(len(rows) + 1)))
    entry = copy.write_shard(s, vectors[rows], [ids[i] for i in rows])
    assert entry["db_id"] == s and entry["rows"] == len(rows)
    with pytest.raises(ConflictError, match="no objects"):
        plan.publish([dict(entry, attempt=entry["attempt"] + 1)])
    published = plan.publish([entry])
    assert published["total_vectors"] == len(rows)
    with pytest.raises(ConfigValidationError):
        train_centroids(vectors[:3], DBS)


def test_arrow_partitions_route_like_numpy(data, tmp_path):
    pa = pytest.importorskip("pyarrow")
    vectors, ids, _, centroids, _ = data
    plan = BuildPlan.create(str(tmp_path / "snap"), dim=DIM, num_dbs=DBS, metric="cosine",
                            centroids=centroids)
    rows = vectors[:300]
    arrow = pa.FixedSizeListArray.from_arrays(pa.array(rows.ravel()), DIM)
    chunked = pa.chunked_array([arrow.slice(0, 100), arrow.slice(100)])
    for given in (arrow, chunked):
        assert np.array_equal(as_matrix(given), rows)
    want = plan.route(rows)
    assert np.array_equal(plan.route(as_matrix(chunked)), want)
    pieces = split_partition(plan, {"vectors": chunked, "ids": ids[:300]})
    for shard, piece in enumerate(pieces):
        chosen = np.flatnonzero(want == shard)
        if piece is None:
            assert len(chosen) == 0
        else:
            assert piece["ids"] == [ids[i] for i in chosen]
            assert np.array_equal(piece["vectors"], rows[chosen])
    with pytest.raises(ValueError, match="null"):
        as_matrix(pa.FixedSizeListArray.from_arrays(pa.array(rows[:2].ravel()), DIM,
                                                    mask=pa.array([False, True])))
