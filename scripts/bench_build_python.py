"""Benchmark of the distributed builds (issue 19): the same input built by
the CLI's `shardvec build`, by `shardvec.build` (one process), on Dask (a
LocalCluster of worker processes) and on Ray, each to its own local prefix.

Usage: python3 scripts/bench_build_python.py SHARDVEC_BINARY [--n 100000]
       [--dim 128] [--num-dbs 16] [--workers 2] [--partitions 8]

The input is seeded Gaussian blobs; CLUSTER centroids are trained once
(shardvec.train_centroids on a 10 000-row sample) and given to every build,
so each writes the same shards. Times cover the build call only (the
engines' start-up is timed apart); prints one JSON line per writer:
{writer, seconds, vectors_per_s}. Needs the extension in python/shardvec/
(scripts/python.sh puts it there) and dask[distributed] and ray.
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))
os.environ["PYTHONPATH"] = str(ROOT / "python") + os.pathsep + os.environ.get("PYTHONPATH", "")
import shardvec  # noqa: E402
from shardvec.distributed import build_dask, build_ray  # noqa: E402


def report(writer, seconds, n, **extra):
    print(json.dumps({"writer": writer, "seconds": round(seconds, 2), "vectors_per_s": round(n / seconds), **extra}),
          flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("shardvec")
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--num-dbs", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--partitions", type=int, default=8)
    args = ap.parse_args()
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(64, args.dim)).astype(np.float32)
    vectors = (centres[rng.integers(0, 64, size=args.n)] + 0.3 * rng.normal(size=(args.n, args.dim))).astype(
        np.float32)
    ids = list(range(args.n))
    centroids = shardvec.train_centroids(vectors[rng.choice(args.n, 10_000, replace=False)], args.num_dbs,
                                         metric="cosine", seed=1)
    kw = dict(num_dbs=args.num_dbs, metric="cosine", centroids=centroids, num_probes=2)
    bounds = np.linspace(0, args.n, args.partitions + 1).astype(int)
    parts = [{"vectors": vectors[a:b], "ids": ids[a:b]} for a, b in zip(bounds[:-1], bounds[1:])]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        np.save(tmp / "v.npy", vectors)
        np.save(tmp / "c.npy", centroids)
        t = time.perf_counter()
        subprocess.run([args.shardvec, "build", "--prefix", str(tmp / "cli"), "--input", str(tmp / "v.npy"),
                        "--strategy", "cluster", "--num-dbs", str(args.num_dbs), "--metric", "cosine",
                        "--centroids", str(tmp / "c.npy"), "--num-probes", "2"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        report("cli build", time.perf_counter() - t, args.n)

        t = time.perf_counter()
        shardvec.build(str(tmp / "py"), vectors, ids=ids, **kw)
        report("shardvec.build (one process)", time.perf_counter() - t, args.n)

        import distributed
        t = time.perf_counter()
        cluster = distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                                           dashboard_address=None)
        client = distributed.Client(cluster)
        started = time.perf_counter() - t
        t = time.perf_counter()
        build_dask(str(tmp / "dask"), parts, client=client, **kw)
        report(f"dask ({args.workers} worker processes)", time.perf_counter() - t, args.n,
               startup_s=round(started, 1))
        client.close()
        cluster.close()

        import ray
        t = time.perf_counter()
        ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
        started = time.perf_counter() - t
        refs = [ray.put(p) for p in parts]
        t = time.perf_counter()
        build_ray(str(tmp / "ray"), refs, **kw)
        report(f"ray ({args.workers} cpus)", time.perf_counter() - t, args.n, startup_s=round(started, 1))
        ray.shutdown()


if __name__ == "__main__":
    main()
