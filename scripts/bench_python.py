"""Benchmark of the Python API next to `shardvec bench` (issue 19).

Usage: python3 scripts/bench_python.py PREFIX QUERIES.npy [--num-probes 2] [--top-k 10]

Opens PREFIX with shardvec.ShardedVectorReader (cache in a temporary
folder), warms every shard up with one pass over the queries, then times
every query from 1, 4 and 16 Python threads (each thread its share of the
queries, all threads on one reader) and prints one JSON line per thread
count: {threads, queries, warm_p50_ms, warm_p99_ms, qps}. Latency is the
wall time of `reader.search(...)` as the caller sees it, the Python call
and the result objects included. Needs the extension in python/shardvec/
(scripts/python.sh puts it there).
"""

import argparse
import json
import pathlib
import sys
import tempfile
import threading
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "python"))
from shardvec import ShardedVectorReader  # noqa: E402


def percentile(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("prefix")
    ap.add_argument("queries")
    ap.add_argument("--num-probes", type=int, default=2)
    ap.add_argument("--top-k", type=int, default=10)
    ap.add_argument("--threads", default="1,4,16")
    a = ap.parse_args()
    queries = np.load(a.queries).astype(np.float32)
    with tempfile.TemporaryDirectory() as root, ShardedVectorReader(a.prefix, root) as reader:
        for q in queries:  # warm-up: every routed shard opened
            reader.search(q, a.top_k, num_probes=a.num_probes)
        for threads in [int(t) for t in a.threads.split(",")]:
            latencies = [[] for _ in range(threads)]

            def run(k):
                for q in queries[k::threads]:
                    t0 = time.perf_counter()
                    reader.search(q, a.top_k, num_probes=a.num_probes)
                    latencies[k].append((time.perf_counter() - t0) * 1000)

            workers = [threading.Thread(target=run, args=(k,)) for k in range(threads)]
            t0 = time.perf_counter()
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            elapsed = time.perf_counter() - t0
            flat = [x for per in latencies for x in per]
            print(json.dumps({
                "threads": threads,
                "queries": len(flat),
                "warm_p50_ms": round(percentile(flat, 50), 3),
                "warm_p99_ms": round(percentile(flat, 99), 3),
                "qps": round(len(flat) / elapsed, 1),
            }))


if __name__ == "__main__":
    main()
