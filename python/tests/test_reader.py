"""The Python readers against the peer fixtures, errors, inputs and threads.

Run from the repository root: ``python3 -m pytest python/tests`` with the
built extension in ``python/shardvec/`` (scripts/test.sh puts it there).
"""

import asyncio
import shutil
import threading

import numpy as np
import pytest

import shardvec
from shardvec import (
    AsyncShardedVectorReader,
    ConfigValidationError,
    DbAdapterError,
    ManifestParseError,
    ObjectStoreError,
    ReaderStateError,
    ShardedVectorReader,
    ShardvecError,
    SnapshotNotFoundError,
)

from conftest import FIXTURES, assert_results, halved_scores_allowed, load_case


def check_answers(name, data, search, route):
    for i, q in enumerate(data["queries"]):
        what = f"{name} query {i}"
        r = search(q["query"], q["top_k"], **q["args"])
        assert_results(what, r.results, q["results"], halved_scores_allowed(name))
        assert r.num_shards_queried == q["num_shards_queried"], what
        if q.get("route") is not None and "shard_ids" not in q["args"]:
            assert route(q["query"], **q["args"]) == q["route"], what


def check_info(data, reader):
    info = reader.snapshot_info()
    want = data["snapshot_info"]
    got = {k: getattr(info, k) for k in want}
    assert got == want
    details = [
        {k: getattr(d, k) for k in ("db_id", "db_url", "vector_count", "checkpoint_id")}
        for d in reader.shard_details()
    ]
    assert details == data["shards"]


def test_every_recorded_answer_sync(case, tmp_path):
    name, data = case
    with ShardedVectorReader(str(FIXTURES / name), str(tmp_path)) as reader:
        check_info(data, reader)
        check_answers(name, data, reader.search, reader.route_vector)


def test_every_recorded_answer_async(case, tmp_path):
    name, data = case

    async def run():
        reader = await AsyncShardedVectorReader.open(str(FIXTURES / name), str(tmp_path))
        async with reader:
            check_info(data, reader)
            for i, q in enumerate(data["queries"]):
                r = await reader.search(q["query"], q["top_k"], **q["args"])
                assert_results(f"{name} async {i}", r.results, q["results"], halved_scores_allowed(name))
                assert r.num_shards_queried == q["num_shards_queried"]
            # Many searches at once on one event loop.
            qs = data["queries"][:20]
            got = await asyncio.gather(*(reader.search(q["query"], q["top_k"], **q["args"]) for q in qs))
            for q, r in zip(qs, got):
                assert_results(f"{name} gathered", r.results, q["results"], halved_scores_allowed(name))
        with pytest.raises(ReaderStateError):
            await reader.search(data["queries"][0]["query"])

    asyncio.run(run())


def test_batch_search_equals_single_searches(tmp_path):
    name = "sqlitevec_cluster_cosine"
    data = load_case(name)
    qs = [q for q in data["queries"] if not q["args"]][:10]
    with ShardedVectorReader(str(FIXTURES / name), str(tmp_path)) as reader:
        batch = reader.batch_search(np.array([q["query"] for q in qs], dtype=np.float32), 5)
        for q, r in zip(qs, batch):
            single = reader.search(q["query"], 5)
            assert [h.id for h in r.results] == [h.id for h in single.results]
            assert [h.score for h in r.results] == [h.score for h in single.results]


def misaligned(q):
    """A C-contiguous float32 array at an odd address, as an array unpickled
    from an out-of-band buffer can be."""
    raw = np.asarray(q, dtype=np.float32).tobytes()
    x = np.frombuffer(bytearray(b"\0" + raw), dtype=np.float32, offset=1)
    assert x.flags.c_contiguous and not x.flags.aligned
    return x


@pytest.mark.parametrize(
    "convert",
    [
        lambda q: np.asarray(q, dtype=np.float32),
        lambda q: np.asarray(q, dtype=np.float64),
        lambda q: np.asarray(q, dtype=np.float16).astype(np.float32),
        lambda q: np.repeat(np.asarray(q, dtype=np.float32), 2)[::2],  # a strided view
        lambda q: np.asarray(q, dtype=np.float64)[::-1][::-1],
        misaligned,
        list,
        tuple,
    ],
    ids=["f32", "f64", "f16-rounded", "strided", "reversed-view", "misaligned", "list", "tuple"],
)
def test_query_inputs(convert, tmp_path):
    name = "sqlitevec_lsh_l2"
    q = load_case(name)["queries"][0]
    x = convert(q["query"])
    # The same values as a fresh float32 C-contiguous array: the fast path.
    plain = np.array(np.asarray(x, dtype=np.float32), order="C")
    with ShardedVectorReader(str(FIXTURES / name), str(tmp_path)) as reader:
        want = reader.search(plain, q["top_k"])
        got = reader.search(x, q["top_k"])
        assert [h.id for h in got.results] == [h.id for h in want.results]
        assert [h.score for h in got.results] == [h.score for h in want.results]


def test_errors_are_typed(tmp_path):
    name = "sqlitevec_cluster_cosine"
    data = load_case(name)
    q = data["queries"][0]["query"]
    reader = ShardedVectorReader(str(FIXTURES / name), str(tmp_path / "a"))
    with pytest.raises(ConfigValidationError) as e:
        reader.search(q[:-1])
    assert isinstance(e.value, ValueError) and isinstance(e.value, ShardvecError)
    assert "dimension" in str(e.value)
    with pytest.raises(ConfigValidationError):
        reader.search([float("nan")] * len(q))
    with pytest.raises(ConfigValidationError):
        reader.search(q, 0)
    with pytest.raises(ConfigValidationError) as e:
        reader.search(q, filter={"i": {"$gte": [1]}})
    assert e.value.code == "invalid_filter"
    with pytest.raises(ConfigValidationError):
        reader.search(q, shard_ids=[999])
    with pytest.raises(ConfigValidationError):
        reader.search("not a vector")
    reader.close()
    with pytest.raises(ReaderStateError):
        reader.search(q)
    assert reader.health().status == "unhealthy"

    with pytest.raises(SnapshotNotFoundError):
        ShardedVectorReader(str(tmp_path / "nothing-here"), str(tmp_path / "b"))

    # A manifest that does not parse (no fallback allowed).
    broken = tmp_path / "broken"
    shutil.copytree(FIXTURES / name, broken)
    for m in (broken / "manifests").rglob("manifest"):
        m.write_bytes(b"not a sqlite file")
    with pytest.raises(ManifestParseError):
        ShardedVectorReader(str(broken), str(tmp_path / "c"), max_fallback_attempts=0)

    # A shard object gone from the snapshot.
    gone = tmp_path / "gone"
    shutil.copytree(FIXTURES / name, gone)
    for db in gone.rglob("db=00000/attempt=00/shard.db"):
        db.unlink()
    with ShardedVectorReader(str(gone), str(tmp_path / "d")) as r:
        with pytest.raises(DbAdapterError) as e:
            r.search(q, shard_ids=[0])
        assert "db=00000" in str(e.value)
        assert r.search(q, shard_ids=[1]).results  # the others answer

    # An S3 endpoint nobody listens on, no retries.
    with pytest.raises(ObjectStoreError):
        ShardedVectorReader(
            "s3://bucket/snap",
            str(tmp_path / "e"),
            s3_connection_options={"endpoint_url": "http://127.0.0.1:9", "region_name": "us-east-1", "max_attempts": 0},
            credentials={"access_key_id": "k", "secret_access_key": "s"},
        )
    with pytest.raises(ConfigValidationError):
        ShardedVectorReader(str(FIXTURES / name), str(tmp_path / "f"), credentials={"access_key_id": "only"})
    with pytest.raises(ConfigValidationError):
        ShardedVectorReader(str(FIXTURES / name), str(tmp_path / "g"), max_cached_shards=0)


def test_filter_and_refresh(tmp_path):
    name = "sqlitevec_cluster_cosine"
    q = load_case(name)["queries"][0]["query"]
    with ShardedVectorReader(str(FIXTURES / name), str(tmp_path)) as reader:
        hits = reader.search(q, 10, filter={"tenant": "acme"}, min_results=10, max_probes=8).results
        assert hits and all(h.payload["tenant"] == "acme" for h in hits)
        same = reader.search(q, 10, filter='{"tenant": "acme"}', min_results=10, max_probes=8).results
        assert [h.id for h in same] == [h.id for h in hits]
        assert reader.refresh() is False  # nothing new published
        assert reader.health(staleness_threshold=1.0).status == "degraded"
        assert reader.health().status == "healthy"


def test_the_gil_is_released_while_searching(tmp_path):
    # A rate limit of one search per second makes the second search wait
    # about a second inside Rust. If the GIL were held meanwhile, the main
    # thread could not run until that search returned.
    name = "sqlitevec_cluster_cosine"
    q = load_case(name)["queries"][0]["query"]
    reader = ShardedVectorReader(str(FIXTURES / name), str(tmp_path), rate_limiter=(1.0, 1))
    first_done = threading.Event()
    main_ran_meanwhile = []
    main_done = threading.Event()

    def worker():
        reader.search(q)
        first_done.set()
        reader.search(q)  # waits for the limiter's next token
        main_ran_meanwhile.append(main_done.is_set())

    t = threading.Thread(target=worker)
    t.start()
    first_done.wait()
    sum(range(200_000))  # Python work needing the GIL
    main_done.set()
    t.join()
    reader.close()
    assert main_ran_meanwhile == [True]


def test_threads_search_concurrently_with_identical_answers(tmp_path):
    name = "sqlitevec_cluster_cosine"
    data = load_case(name)
    with ShardedVectorReader(str(FIXTURES / name), str(tmp_path)) as reader:
        want = {i: [h.id for h in reader.search(q["query"], q["top_k"], **q["args"]).results] for i, q in enumerate(data["queries"])}
        errors = []

        def run(offset):
            try:
                for i, q in enumerate(data["queries"]):
                    if (i + offset) % 2 == 0:
                        got = [h.id for h in reader.search(q["query"], q["top_k"], **q["args"]).results]
                        assert got == want[i]
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=run, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []


def test_package_surface():
    assert shardvec.__version__
    for name in shardvec.__all__:
        assert hasattr(shardvec, name), name
    assert ShardedVectorReader.search.__doc__
