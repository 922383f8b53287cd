"""Drives the `shardvec` CLI over the peer fixtures (see demo.sh)."""

import json
import subprocess
import sys
import tempfile
from pathlib import Path


def run(*args):
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def explain(e):
    kind = e["kind"]
    if kind == "cluster":
        return "distances to centroids " + ", ".join(f"{x:.3f}" for x in e["distances"])
    if kind == "lsh":
        return f"hash code {e['code']:#b}, buckets " + ", ".join(
            f"{b['code']}->shard {b['shard']}" for b in e["buckets"])
    if kind == "cel":
        return f"CEL value {e['value']!r}"
    return "named by the request"


def main(binary, fixtures):
    fixtures = Path(fixtures)
    root = tempfile.mkdtemp(prefix="shardvec-demo-")
    ok = total = 0
    cases = [c["case"] for c in json.loads((fixtures / "index.json").read_text())["cases"]]
    for case in cases:
        recorded = json.loads((fixtures / f"{case}.json").read_text())
        common = ["--prefix", str(fixtures / case), "--local-root", root, "--json"]
        i = run(binary, "info", *common)
        print(f"=== {case}")
        print(f"  {i['num_dbs']} shards, dim {i['dim']}, {i['metric']}, {i['sharding']}, "
              f"{i['total_vectors']} vectors")
        shards = run(binary, "shards", *common)
        print("  vectors per shard:", [s["vector_count"] for s in shards])

        q = next(q for q in recorded["queries"] if q.get("route") or "shard_ids" in q["args"])
        a = q["args"]
        args = ["--query", json.dumps(q["query"])]
        if "num_probes" in a:
            args.append(f"--num-probes={a['num_probes']}")
        if "shard_ids" in a:
            args.append("--shard-ids=" + ",".join(map(str, a["shard_ids"])))
        if "routing_context" in a:
            args.append("--routing-context=" + json.dumps(a["routing_context"]))
        e = run(binary, "route", *common, *args, "--explain")
        expected = q.get("route") or a.get("shard_ids")
        print(f"  search args {json.dumps(a)}")
        print(f"  route {e['shards']} ({explain(e)}); reference route {expected}")
        total += 1
        same = e["shards"] == expected
        r = run(binary, "search", *common, *args, f"--top-k={q['top_k']}")
        got = [h["id"] for h in r["results"]]
        want = [h["id"] for h in q["results"]]
        print(f"  top-{q['top_k']} ids {got} in {r['latency_ms']:.2f} ms; reference {want}")
        same = same and got == want
        ok += same
    print(f"\n{ok} of {total} snapshots routed and searched exactly as the reference")
    return 0 if ok == total else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
