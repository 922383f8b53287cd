#!/usr/bin/env python3
"""Tables of BENCHMARKS.md from the JSON lines of scripts/bench.sh.

    python3 scripts/bench_report.py results.jsonl            # markdown to stdout
    python3 scripts/bench_report.py results.jsonl --splice BENCHMARKS.md

With --splice, the text between `<!-- bench:begin -->` and
`<!-- bench:end -->` in the file is replaced.
"""
import json
import platform
import subprocess
import sys


def machine():
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    mem = "?"
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
    except OSError:
        pass
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    return f"{cpu}, {cores} cores, {mem} RAM, {platform.system()} {platform.release()}; {rustc}; Node {node}"


def f(x, nd=2):
    return "—" if x is None else f"{x:.{nd}f}"


def backend(r):
    """The backend column: sqlite-vec rows name their scan when it is not the default."""
    label = r["backend"] + (" (extension scan)" if r.get("scan") == "extension" else "")
    return label + (" †" if r.get("run") == "previous" else "")


def main():
    rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
    out = []
    w = out.append
    w(f"Machine: {machine()}.\n")
    base = {(r["dataset"], r["metric"]): r for r in rows if r["kind"] == "baseline"}
    head = [r for r in rows if r["kind"] == "headline"]
    if head:
        w("### Headline: 100 000 × 128, sqlite-vec, CLUSTER, num_probes 2 (one caller, top_k 10, 5 rounds)\n")
        w("| metric | scan | p50 ms | p99 ms | queries/s | (a) p50 ms | × (a) |")
        w("|---|---|---:|---:|---:|---:|---:|")
        for r in head:
            fl = r.get("floor") or {}
            ra = r["warm_p50_ms"] / fl["p50_ms"] if fl.get("p50_ms") else None
            w(f"| {r['metric']} | {r.get('scan', 'memory')} | {f(r['warm_p50_ms'], 3)} | {f(r['warm_p99_ms'], 3)} | {f(r['qps'], 0)} "
              f"| {f(fl.get('p50_ms'), 3)} | {f(ra)} |")
        w("")
    w("### Warm search per num_probes (one caller, top_k 10, async reader)\n")
    w("(a) = in-memory SIMD brute force of the same routed shards; (b) = one un-sharded LanceDB table of the same vectors.\n")
    w("| dataset | backend | strategy | metric | probes | shards/query | p50 ms | p99 ms | recall@10 | (a) p50 ms | × (a) | (b) p50 ms | (b) recall | × (b) |")
    w("|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        if r["kind"] != "probes":
            continue
        fl = r.get("floor") or {}
        b = base.get((r["dataset"], r["metric"]))
        ra = r["warm_p50_ms"] / fl["p50_ms"] if fl.get("p50_ms") else None
        rb = r["warm_p50_ms"] / b["warm_p50_ms"] if b else None
        w(f"| {r['dataset']} | {backend(r)} | {r['strategy']} | {r['metric']} | {r['num_probes']} | {f(r['mean_shards_queried'])} "
          f"| {f(r['warm_p50_ms'], 3)} | {f(r['warm_p99_ms'], 3)} | {f(r.get('recall_at_k'), 4)} | {f(fl.get('p50_ms'), 3)} | {f(ra)} "
          f"| {f(b['warm_p50_ms'], 3) if b else '—'} | {f(b.get('recall_at_k'), 4) if b else '—'} | {f(rb)} |")
    if any(r.get("run") == "previous" for r in rows):
        w("\n† measured by the previous run of this script (rows carried over with `\"run\": \"previous\"`), not re-run this time.")
    w("\n### Throughput (queries/s, num_probes 2, 2 rounds over the queries)\n")
    w("| dataset | backend | strategy | metric | async ×1 | async ×4 | async ×16 | sync ×1 | sync ×4 | sync ×16 | p99 ms at ×16 (async) |")
    w("|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    groups = {}
    for r in rows:
        if r["kind"] == "throughput":
            groups.setdefault((r["dataset"], backend(r), r["strategy"], r["metric"]), {})[(r["api"], r["concurrency"])] = r
    for (ds, be, st, me), g in groups.items():
        cell = lambda a, c: f(g[(a, c)]["qps"], 0) if (a, c) in g else "—"
        p99 = f(g[("async", 16)]["warm_p99_ms"], 2) if ("async", 16) in g else "—"
        w(f"| {ds} | {be} | {st} | {me} | {cell('async', 1)} | {cell('async', 4)} | {cell('async', 16)} | {cell('sync', 1)} | {cell('sync', 4)} | {cell('sync', 16)} | {p99} |")
    w("\n### Cold open + first query, bytes read from the store (CLUSTER, cosine, num_probes 2)\n")
    w("Empty `local_root` each time. `local` copies shards into the local cache; `remote` (LanceDB) searches the dataset in place on the store.\n")
    w("| dataset | backend | store | mode | cold open + first query ms | bytes read cold | bytes per warm query | warm p50 ms |")
    w("|---|---|---|---|---:|---:|---:|---:|")
    for r in rows:
        if r["kind"] == "s3":
            store = "file://" if r["mode"] == "file" else "S3 (moto, loopback)"
            mode = "local" if r["mode"] == "file" else r["mode"]
            w(f"| {r['dataset']} | {r['backend']} | {store} | {mode} | {f(r['cold_open_first_query_ms'], 1)} | {r.get('cold_bytes_read')} "
              f"| {f(r.get('warm_bytes_read_per_query'), 0)} | {f(r['warm_p50_ms'], 3)} |")
    w("\n### Peak RSS (MiB, whole process, largest over the runs of a snapshot)\n")
    w("| dataset | backend | strategy | metric | peak RSS |")
    w("|---|---|---|---|---:|")
    rss = {}
    for r in rows:
        if r["kind"] in ("probes", "baseline") and r.get("peak_rss_mib"):
            k = (r["dataset"], backend(r), r["strategy"], r["metric"])
            rss[k] = max(rss.get(k, 0), r["peak_rss_mib"])
    for k, v in rss.items():
        w(f"| {' | '.join(k)} | {v:.0f} |")
    w("\n### Routing alone (768-d query, 1 024 centroids, CLUSTER cosine)\n")
    w("| runtime | ns/query | routes |")
    w("|---|---:|---:|")
    for r in rows:
        if r["kind"] == "route":
            w(f"| {r['runtime']} | {r['route_ns_per_query']:.0f} | {r['routes']} |")
    text = "\n".join(out) + "\n"
    if len(sys.argv) > 3 and sys.argv[2] == "--splice":
        path = sys.argv[3]
        doc = open(path).read()
        begin, end = "<!-- bench:begin -->", "<!-- bench:end -->"
        a, b = doc.index(begin) + len(begin), doc.index(end)
        open(path, "w").write(doc[:a] + "\n" + text + doc[b:])
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
