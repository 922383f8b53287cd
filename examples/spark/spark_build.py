"""A snapshot built by Spark tasks with shardvec's building blocks.

    pip install pyspark numpy ./python     # or PYTHONPATH=python with the extension built
    python3 examples/spark/spark_build.py /tmp/spark-snap [--n 100000] [--dim 128] [--num-dbs 16]

Runs Spark in local mode (Java 17), builds a CLUSTER snapshot of seeded
random vectors, and checks it: the snapshot answers like `shardvec.build`
of the same rows with the same centroids. The steps are those of
`shardvec.distributed` (whose Dask and Ray versions are tested in the test
command), written with Spark's own primitives:

1. a sample from every partition (`mapPartitionsWithIndex`), centroids
   trained on the driver (`train_centroids`);
2. the plan created on the driver and broadcast (it pickles);
3. each partition routed (`plan.route`) into (shard, row) pairs, grouped by
   shard (`groupByKey`: Spark's shuffle);
4. one task per shard writes and uploads it (`plan.write_shard`);
5. the driver publishes the entries (`plan.publish`), or aborts.

For S3, pass `s3_connection_options` to `BuildPlan.create` and give the
executors the `AWS_*` environment. Keep speculative execution off
(`spark.speculation=false`, Spark's default).
"""

import argparse
import math
import sys
import tempfile

import numpy as np
from pyspark.sql import SparkSession

import shardvec
from shardvec import BuildPlan, ShardedVectorReader, train_centroids


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("prefix")
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--num-dbs", type=int, default=16)
    ap.add_argument("--partitions", type=int, default=8)
    ap.add_argument("--train-sample", type=int, default=20_000)
    args = ap.parse_args()

    rng = np.random.default_rng(7)
    centres = rng.normal(size=(50, args.dim)).astype(np.float32)
    vectors = (centres[rng.integers(0, 50, size=args.n)] + 0.3 * rng.normal(size=(args.n, args.dim))).astype(
        np.float32)

    spark = (SparkSession.builder.master(f"local[{args.partitions}]").appName("shardvec-build")
             .config("spark.ui.enabled", "false").getOrCreate())
    sc = spark.sparkContext
    rows = sc.parallelize([(i, vectors[i]) for i in range(args.n)], args.partitions).cache()

    # 1. A sample from every partition, in proportion to its rows.
    share = args.train_sample / args.n

    def sample(index, it):
        part = [v for _, v in it]
        k = min(len(part), math.ceil(share * len(part)))
        chosen = np.random.default_rng([1, index]).choice(len(part), size=k, replace=False)
        return [part[i] for i in chosen]

    centroids = train_centroids(np.stack(rows.mapPartitionsWithIndex(sample).collect()), args.num_dbs,
                                metric="cosine", seed=1)

    # 2. The plan, on the driver, broadcast to the executors.
    plan = BuildPlan.create(args.prefix, dim=args.dim, num_dbs=args.num_dbs, metric="cosine",
                            centroids=centroids, num_probes=2)
    shared = sc.broadcast(plan)
    try:
        # 3. Route every partition; group by shard.
        def route(it):
            part = list(it)
            if not part:
                return []
            shards = shared.value.route(np.stack([v for _, v in part]))
            return [(int(s), row) for s, row in zip(shards, part)]

        # 4. One task per shard.
        def write(kv):
            shard, group = kv
            group = list(group)
            return shared.value.write_shard(shard, np.stack([v for _, v in group]), [i for i, _ in group])

        entries = rows.mapPartitions(route).groupByKey(args.num_dbs).map(write).collect()
        # 5. Publish.
        published = plan.publish(entries)
    except BaseException:
        plan.abort()
        raise
    finally:
        spark.stop()
    print(published)

    # The check: the same rows and centroids built in one process answer
    # every query identically.
    with tempfile.TemporaryDirectory() as tmp:
        shardvec.build(f"{tmp}/single", vectors, num_dbs=args.num_dbs, metric="cosine", centroids=centroids,
                       num_probes=2)
        queries = vectors[rng.choice(args.n, 50, replace=False)] + 0.05
        with ShardedVectorReader(args.prefix, f"{tmp}/c1") as a, ShardedVectorReader(f"{tmp}/single",
                                                                                      f"{tmp}/c2") as b:
            for q in queries:
                got = [(h.id, h.score) for h in a.search(q, 10).results]
                want = [(h.id, h.score) for h in b.search(q, 10).results]
                if got != want:
                    sys.exit(f"the Spark build answers differently: {got} vs {want}")
    print(f"Spark build of {args.n} vectors answers like shardvec.build on 50 queries")


if __name__ == "__main__":
    main()
