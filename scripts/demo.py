"""Drives the `shardvec` CLI over the peer fixtures (see demo.sh)."""

import json
import subprocess
import sys
from pathlib import Path


def run(*args):
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def main(binary, fixtures):
    fixtures = Path(fixtures)
    agree = 0
    cases = [c["case"] for c in json.loads((fixtures / "index.json").read_text())["cases"]]
    for case in cases:
        recorded = json.loads((fixtures / f"{case}.json").read_text())
        d = run(binary, "info", str(fixtures / case))
        i = d["snapshot_info"]
        print(f"=== {case}")
        print(f"  run {i['run_id']}: {i['num_dbs']} shards, dim {i['dim']}, "
              f"{i['metric']}, {i['sharding']}, {i['total_vectors']} vectors")
        print("  vectors per shard:", [s["vector_count"] for s in d["shards"]])

        q = next(q for q in recorded["queries"] if q.get("route") or "shard_ids" in q["args"])
        a = q["args"]
        args = [binary, "route", str(fixtures / case),
                "--query=" + ",".join(repr(v) for v in q["query"])]
        if "num_probes" in a:
            args.append(f"--num-probes={a['num_probes']}")
        if "shard_ids" in a:
            args.append("--shard-ids=" + ",".join(map(str, a["shard_ids"])))
        if "routing_context" in a:
            args.append("--context=" + json.dumps(a["routing_context"]))
        e = run(*args)
        kind = e["kind"]
        if kind == "cluster":
            why = "distances " + ", ".join(f"{x:.3f}" for x in e["distances"])
        elif kind == "lsh":
            why = f"code {e['code']:#b}, buckets " + ", ".join(
                f"{b['code']}->shard {b['shard']}" for b in e["buckets"])
        elif kind == "cel":
            why = f"value {e['value']!r}"
        else:
            why = "named by the request"
        expected = q.get("route") or a.get("shard_ids")
        agree += e["shards"] == expected
        print(f"  args {json.dumps(a)}")
        print(f"  route {e['shards']} ({kind}: {why})")
        print(f"  reference route {expected}")
    print(f"\n{agree} of {len(cases)} routes equal the reference's")
    return 0 if agree == len(cases) else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
