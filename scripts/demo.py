"""Drives the `shardvec` CLI over the peer fixtures (see demo.sh)."""

import json
import subprocess
import sys
import tempfile
from pathlib import Path


class NotCompiled(Exception):
    """The binary lacks the backend a snapshot needs (a cargo feature)."""


def run(*args):
    p = subprocess.run(args, capture_output=True, text=True)
    if p.returncode != 0:
        if "enable the cargo feature" in p.stderr:
            raise NotCompiled(p.stderr.strip())
        raise subprocess.CalledProcessError(p.returncode, args, p.stdout, p.stderr)
    return json.loads(p.stdout)


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
    ok = total = skipped = 0
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
        try:
            r = run(binary, "search", *common, *args, f"--top-k={q['top_k']}")
        except NotCompiled as err:
            print(f"  search skipped: {err.args[0].removeprefix('shardvec: ')}")
            total -= 1
            skipped += 1
            continue
        got = [h["id"] for h in r["results"]]
        want = [h["id"] for h in q["results"]]
        print(f"  top-{q['top_k']} ids {got} in {r['latency_ms']:.2f} ms; reference {want}")
        same = same and got == want
        ok += same
    print(f"\n{ok} of {total} snapshots routed and searched exactly as the reference")
    if skipped:
        print(f"{skipped} LanceDB snapshots routed but not searched: this build has no LanceDB "
              "backend; `bash scripts/demo.sh --full` builds it")
    return 0 if ok == total else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
