#!/usr/bin/env python3
"""Writes tests/golden/routes.json and tests/golden/merge.json.

The expected answers are computed here, independently of shardvec: the
manifests are read with Python's own sqlite3, the artefacts with numpy, and
routing follows the rules of docs/format.md written out
again in Python. Both the native tests (tests/it/golden_routes.rs) and the
wasm tests (tests/wasm/golden.test.mjs) compare their answers with these
files; CI runs only those tests, on the committed JSON.

Routing distances are float32 computations. Where ties matter (the designed
exact ties below) the arithmetic is the one docs/format.md implies and shardvec's
core documents: float32 products accumulated in NumPy's pairwise order,
`sqrt` and the cosine formula in float32. This script emulates that bit for bit with numpy
float32 operations (each one rounded), checks that its rules reproduce every
route the reference implementation recorded in the peer fixtures, and keeps
only random queries whose routes a float64 computation agrees with (so no
expected route hangs on rounding, except the designed ties, which are exact
in float32).

Run from the project root (needs numpy and xxhash: `pip install numpy
xxhash`):

    python3 tests/golden/make_routes.py [--fixtures tests/fixtures/peer]
"""

import argparse
import json
import os
import sqlite3
import sys

import numpy as np
import xxhash

F32 = np.float32
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


# ---- reading a snapshot (independently of shardvec) -------------------------


def load_case(fixtures, case):
    base = os.path.join(fixtures, case)
    with open(os.path.join(base, "_CURRENT"), "rb") as f:
        current = json.load(f)
    url = current["manifest_ref"]
    key = url[url.rfind("/manifests/") + 1 :]
    con = sqlite3.connect(f"file:{os.path.join(base, key)}?mode=ro", uri=True)
    num_dbs, s3_prefix, custom = con.execute(
        "SELECT num_dbs, s3_prefix, custom FROM build_meta"
    ).fetchone()
    con.close()
    vector = json.loads(custom)["vector"]

    def artefact(ref):
        if not ref:
            return None
        assert ref.startswith(s3_prefix + "/"), ref
        m = np.load(os.path.join(base, ref[len(s3_prefix) + 1 :]))
        return np.ascontiguousarray(m, dtype=F32)

    with open(os.path.join(fixtures, case + ".json")) as f:
        recorded = json.load(f)
    return {
        "case": case,
        "num_dbs": num_dbs,
        "vector": vector,
        "centroids": artefact(vector.get("centroids_ref")),
        "hyperplanes": artefact(vector.get("hyperplanes_ref")),
        "recorded": recorded,
    }


# ---- float32 arithmetic as docs/format.md defines it ------------------------------


def pairwise_cols(t):
    """Sum over axis 1 of float32 terms `t` [rows, n], in the order of
    NumPy's `pairwise_sum` (loops_utils.h.src), every addition rounded to
    float32: fewer than 8 terms in index order; up to 128 as 8 interleaved
    partial sums combined ((r0+r1)+(r2+r3))+((r4+r5)+(r6+r7)), then the rest
    in order; longer runs split in halves whose first is a multiple of 8."""
    n = t.shape[1]
    if n < 8:
        res = np.zeros(t.shape[0], dtype=F32)
        for i in range(n):
            res = (res + t[:, i]).astype(F32)
        return res
    if n <= 128:
        r = [t[:, j].astype(F32) for j in range(8)]
        whole = n - n % 8
        for i in range(8, whole, 8):
            for j in range(8):
                r[j] = (r[j] + t[:, i + j]).astype(F32)
        res = (((r[0] + r[1]).astype(F32) + (r[2] + r[3]).astype(F32)).astype(F32)
               + ((r[4] + r[5]).astype(F32) + (r[6] + r[7]).astype(F32)).astype(F32)).astype(F32)
        for i in range(whole, n):
            res = (res + t[:, i]).astype(F32)
        return res
    n2 = n // 2
    n2 -= n2 % 8
    return (pairwise_cols(t[:, :n2]) + pairwise_cols(t[:, n2:])).astype(F32)


def seq_dot(rows, q):
    """Dot product of every row of `rows` with `q`: float32 products summed
    in pairwise order (`pairwise_cols`)."""
    rows = np.atleast_2d(rows).astype(F32)
    q = np.asarray(q, dtype=F32)
    return pairwise_cols((rows * q[None, :]).astype(F32))


def seq_l2(rows, q):
    rows = np.atleast_2d(rows).astype(F32)
    q = np.asarray(q, dtype=F32)
    d = (rows - q[None, :]).astype(F32)
    return pairwise_cols((d * d).astype(F32))


def distances_f32(metric, centroids, q):
    if metric == "l2":
        return seq_l2(centroids, q)
    if metric == "dot_product":
        return (-seq_dot(centroids, q)).astype(F32)
    # cosine: 1 - dot / (|c| |q| + 1e-10), and 1.0 for a zero query
    qnorm = np.sqrt(seq_dot(q[None, :], q)[0]).astype(F32)
    if qnorm == 0:
        return np.ones(len(centroids), dtype=F32)
    cnorm = np.sqrt(np.array([seq_dot(c[None, :], c)[0] for c in centroids], dtype=F32))
    denom = ((cnorm * qnorm).astype(F32) + F32(1e-10)).astype(F32)
    return (F32(1.0) - (seq_dot(centroids, q) / denom).astype(F32)).astype(F32)


def distances_f64(metric, centroids, q):
    c = centroids.astype(np.float64)
    q = np.asarray(q, dtype=np.float64)
    if metric == "l2":
        return ((c - q) ** 2).sum(axis=1)
    if metric == "dot_product":
        return -(c @ q)
    n = np.linalg.norm(q)
    if n == 0:
        return np.ones(len(c))
    return 1 - (c @ q) / (np.linalg.norm(c, axis=1) * n + 1e-10)


# ---- the routing rules of docs/format.md ------------------------------------------


class RouteError(Exception):
    pass


def probes(snap, args):
    p = args.get("num_probes", snap["vector"].get("num_probes") or 1)
    if p < 1:
        raise RouteError("num_probes must be at least 1")
    return min(p, snap["num_dbs"])


def explicit(snap, ids):
    out = []
    for i in ids:
        if not 0 <= i < snap["num_dbs"]:
            raise RouteError(f"shard id {i} out of range")
        if i not in out:
            out.append(i)
    return out


def cluster_route(snap, q, p, dist=distances_f32):
    d = dist(snap["vector"]["metric"], snap["centroids"], q)
    # A stable sort on distance: ties keep index order.
    return [int(i) for i in np.argsort(d, kind="stable")[:p]]


def lsh_route(snap, q, p, dot=seq_dot):
    h = snap["hyperplanes"]
    n = snap["num_dbs"]
    proj = dot(h, q)
    code = 0
    for i, x in enumerate(proj):
        if x > 0:
            code |= 1 << i
    out = [code % n]
    for bit in range(len(h)):
        if len(out) >= p:
            break
        s = (code ^ (1 << bit)) % n
        if s not in out:
            out.append(s)
    return out[:p]


def cel_route(snap, ctx):
    v = snap["vector"]
    expr = v["cel_expr"]
    if expr == "shard_hash(tenant) % 5u":
        value = xxhash.xxh3_64_intdigest(ctx["tenant"].encode("utf-8"), seed=0) % 5
    elif expr == "region":
        value = ctx["region"]
    else:
        raise RouteError(f"no Python rendering of CEL `{expr}`")
    values = v.get("routing_values")
    if values is not None:
        if value not in values:
            raise RouteError(f"{value!r} is not a routing value")
        return [values.index(value)]
    if not 0 <= value < snap["num_dbs"]:
        raise RouteError(f"shard id {value} out of range")
    return [int(value)]


def route(snap, q, args, exact=True):
    """The route of docs/format.md. `exact=False` uses float64 distances (to
    detect routes that depend on rounding)."""
    if "shard_ids" in args:
        return explicit(snap, args["shard_ids"])
    strategy = snap["vector"]["sharding_strategy"]
    if strategy == "cluster":
        return cluster_route(snap, q, probes(snap, args), distances_f32 if exact else distances_f64)
    if strategy == "lsh":
        dot = seq_dot if exact else (lambda h, q: h.astype(np.float64) @ np.asarray(q, np.float64))
        return lsh_route(snap, q, probes(snap, args), dot)
    if strategy == "explicit":
        raise RouteError("EXPLICIT routing needs shard_ids")
    return cel_route(snap, args["routing_context"])


# ---- designed exact ties --------------------------------------------------------


def ulp_search(q0, target, rng, tries=400_000, batch=20_000):
    """Perturbs `q0` by a few ulps in random coordinates until
    `target(batch_of_queries)` (a boolean per query) holds; returns the
    first such query (float32) or None."""
    q0 = np.asarray(q0, dtype=F32)
    d = len(q0)
    for _ in range(tries // batch):
        steps = rng.integers(-3, 4, size=(batch, d))
        mask = rng.random((batch, d)) < 0.3
        steps = np.where(mask, steps, 0)
        qs = np.repeat(q0[None, :], batch, axis=0)
        # Move each coordinate |step| ulps towards +-inf.
        for k in range(1, 4):
            up = steps >= k
            down = steps <= -k
            qs = np.where(up, np.nextafter(qs, F32(np.inf)), qs)
            qs = np.where(down, np.nextafter(qs, F32(-np.inf)), qs)
        ok = target(qs)
        if ok.any():
            return qs[int(np.argmax(ok))]
    return None


def batch_distances(metric, c, qs):
    """Distances from each query in `qs` to one centroid `c` (float32,
    pairwise sums), vectorised over the queries."""
    qs = qs.astype(F32)
    c = np.asarray(c, dtype=F32)
    if metric == "l2":
        d = (c[None, :] - qs).astype(F32)
        return pairwise_cols((d * d).astype(F32))
    acc = pairwise_cols((qs * c[None, :]).astype(F32))
    if metric == "dot_product":
        return (-acc).astype(F32)
    qq = pairwise_cols((qs * qs).astype(F32))
    qnorm = np.sqrt(qq).astype(F32)
    cnorm = np.sqrt(seq_dot(c[None, :], c)[0]).astype(F32)
    denom = ((cnorm * qnorm).astype(F32) + F32(1e-10)).astype(F32)
    return (F32(1.0) - (acc / denom).astype(F32)).astype(F32)


def cluster_tie(snap, rng):
    """A query exactly equidistant (in float32) from the two centroids
    nearest to each other, and nearer to them than to any other."""
    c = snap["centroids"].astype(np.float64)
    metric = snap["vector"]["metric"]
    n = len(c)
    best = None
    for a in range(n):
        for b in range(a + 1, n):
            gap = np.linalg.norm(c[a] - c[b])
            if best is None or gap < best[0]:
                best = (gap, a, b)
    _, a, b = best
    if metric == "l2":
        q0 = (c[a] + c[b]) / 2
    elif metric == "cosine":
        q0 = c[a] / np.linalg.norm(c[a]) + c[b] / np.linalg.norm(c[b])
    else:  # dot_product: orthogonal to c_a - c_b, along c_a + c_b
        v = c[a] + c[b]
        w = c[a] - c[b]
        q0 = v - (v @ w) / (w @ w) * w
    ca, cb = snap["centroids"][a], snap["centroids"][b]
    q = ulp_search(
        q0.astype(F32),
        lambda qs: batch_distances(metric, ca, qs) == batch_distances(metric, cb, qs),
        rng,
    )
    assert q is not None, f"{snap['case']}: no exact tie found"
    d = distances_f32(metric, snap["centroids"], q)
    assert d[a] == d[b]
    ranking = list(np.argsort(d, kind="stable"))
    return q, a, b, ranking[:2] == [a, b]


def lsh_zero_projection(snap, rng):
    """A query exactly on the first hyperplane: projection 0.0 in float32
    (bit 0 clear, since the rule is `h.q > 0`). Nonzero only in two
    coordinates i < j, q_i = h_j and q_j = -h_i, so the two products are
    exact negatives of each other whatever the rounding."""
    h0 = snap["hyperplanes"][0]
    i, j = sorted(rng.choice(len(h0), size=2, replace=False))
    q = np.zeros(len(h0), dtype=F32)
    q[i] = h0[j]
    q[j] = -h0[i]
    assert seq_dot(h0[None, :], q)[0] == 0
    return q


# ---- the golden queries -----------------------------------------------------------


def f32_list(q):
    return [float(x) for x in np.asarray(q, dtype=F32)]


def probe_args(snap):
    n = snap["num_dbs"]
    return [{}] + [{"num_probes": p} for p in sorted({1, 2, 3, n - 1, n, n + 3} - {0})]


def check_recorded(snap):
    """Our rules must reproduce every route the reference recorded."""
    count = 0
    for i, q in enumerate(snap["recorded"]["queries"]):
        args = q["args"]
        got = route(snap, np.asarray(q["query"], dtype=F32), args)
        want = q.get("route") or args.get("shard_ids")
        assert got == want, f"{snap['case']} recorded query {i}: {got} != {want}"
        count += 1
    return count


def golden_for(snap, rng):
    strategy = snap["vector"]["sharding_strategy"]
    recorded = snap["recorded"]["queries"]
    dim = snap["recorded"]["snapshot_info"]["dim"]
    n = snap["num_dbs"]
    entries = []

    def add(name, q, args_list, require_stable=True):
        q = np.asarray(q, dtype=F32)
        expect = []
        for args in args_list:
            r = route(snap, q, args)
            if require_stable and strategy in ("cluster", "lsh") and "shard_ids" not in args:
                if route(snap, q, args, exact=False) != r:
                    return False
            expect.append({"args": args, "route": r})
        entries.append({"name": name, "query": f32_list(q), "expect": expect})
        return True

    if strategy in ("cluster", "lsh"):
        seen = set()
        for i, rq in enumerate(recorded):
            key = tuple(rq["query"])
            if key in seen or len(seen) >= 6:
                continue
            seen.add(key)
            add(f"recorded query {i}", rq["query"], probe_args(snap))
        # Random queries: around the data (blobs of scale ~ the queries') and
        # isotropic ones; only those whose routes do not hang on rounding.
        scale = float(np.std(np.asarray([r["query"] for r in recorded], dtype=np.float64)))
        made = 0
        while made < 10:
            if strategy == "cluster" and made % 2 == 0:
                c = snap["centroids"][rng.integers(n)]
                q = c + rng.standard_normal(dim) * scale * 0.5
            else:
                q = rng.standard_normal(dim) * scale
            if add(f"random query {made}", q, probe_args(snap)):
                made += 1
        # Explicit shard ids override the strategy (duplicates dropped).
        ids = [n - 1, 0, n - 1, 1 % n]
        add(
            "explicit shard ids override routing",
            recorded[0]["query"],
            [{"shard_ids": ids}, {"shard_ids": ids, "num_probes": 1}, {"shard_ids": [n - 1]}],
        )
    if strategy == "cluster":
        q, a, b, top2 = cluster_tie(snap, rng)
        assert top2, f"{snap['case']}: tie is not between the two nearest centroids"
        add(
            f"exact tie between centroids {a} and {b} (lower index first)",
            q,
            probe_args(snap),
            require_stable=False,
        )
        if snap["vector"]["metric"] in ("cosine", "dot_product"):
            # A zero query is at the same distance from every centroid.
            add("zero query: every centroid ties", np.zeros(dim), probe_args(snap), False)
    if strategy == "lsh":
        add("zero query: code 0", np.zeros(dim), probe_args(snap), require_stable=False)
        add("negative zero query: code 0", -np.zeros(dim), probe_args(snap), False)
        q = lsh_zero_projection(snap, rng)
        add("exactly on hyperplane 0 (bit 0 clear)", q, probe_args(snap), require_stable=False)
        # Large multi-probe: more probes than distinct flipped buckets.
        add(
            "hyperplane 0 itself",
            snap["hyperplanes"][0],
            [{"num_probes": p} for p in range(1, n + 2)],
            require_stable=False,
        )
    if strategy == "explicit":
        add(
            "explicit shard ids",
            recorded[0]["query"],
            [
                {"shard_ids": [2]},
                {"shard_ids": [3, 1, 3, 0]},
                {"shard_ids": list(range(n))},
                {"shard_ids": list(reversed(range(n)))},
                {"shard_ids": [1], "num_probes": 3},
            ],
        )
    if strategy == "cel":
        expr = snap["vector"]["cel_expr"]
        if "shard_hash" in expr:
            tenants = sorted({rq["args"]["routing_context"]["tenant"] for rq in recorded})
            tenants += [
                "",
                "a",
                "tenant-with-a-much-longer-name-than-usual-" + "x" * 200,
                "ünïcødé テナント 🚀",
                "Acme",
                "acme ",
            ]
            tenants += [f"tenant-{i}" for i in range(24)]
            args = [{"routing_context": {"tenant": t, "region": "eu"}} for t in tenants]
        else:
            args = [
                {"routing_context": {"region": r, "tenant": t}}
                for r in snap["vector"]["routing_values"]
                for t in ("acme", "globex")
            ]
        args.append({"shard_ids": [n - 1, 0], "routing_context": args[0]["routing_context"]})
        add("CEL routing contexts", recorded[0]["query"], args)
        # The query vector plays no part in CEL routing.
        add("CEL with a zero query", np.zeros(dim), args[:3])
    return entries


# ---- merge --------------------------------------------------------------------------


def merge_cases(rng):
    cases = []
    labels = ["red", "green", "blue"]
    for n_case in range(40):
        shards = int(rng.integers(0, 6))
        # Few distinct scores in some cases so that ties are frequent.
        pool = np.round(rng.random(int(rng.integers(2, 8))) * 4, 1).astype(F32)
        per_shard = []
        next_id = 0
        for s in range(shards):
            k = int(rng.integers(0, 9))
            if n_case % 3 == 0:
                scores = rng.choice(pool, size=k)
            else:
                scores = rng.random(k).astype(F32) * F32(10) - F32(2)
            if n_case % 5 == 0 and k:
                scores[0] = F32(-0.0)
                if k > 1:
                    scores[1] = F32(0.0)
            # Shards return sorted lists; a few cases do not, merge must not care.
            if n_case % 4 != 1:
                scores = np.sort(scores, kind="stable")
            items = []
            for sc in scores:
                if n_case % 2 == 0:
                    vid = next_id
                else:
                    vid = f"doc-{next_id}" if next_id % 3 else next_id
                next_id += 1
                item = {"id": vid, "score": float(F32(sc))}
                r = rng.random()
                if r < 0.6:
                    item["payload"] = {"i": next_id, "label": labels[next_id % 3], "tags": [s, "x"]}
                elif r < 0.7:
                    item["payload"] = None
                items.append(item)
            per_shard.append(items)
        total = sum(len(x) for x in per_shard)
        top_k = int(rng.choice([0, 1, 3, 5, 10, max(total, 1), total + 5]))
        arrival = [it for lst in per_shard for it in lst]
        # Python's sort is stable: ties keep arrival order (shard, then rank).
        expected = sorted(arrival, key=lambda it: it["score"])[:top_k]
        cases.append({"top_k": top_k, "per_shard": per_shard, "expected": expected})
    return cases


def write_json(path, doc):
    """Writes `doc` ({"about": ..., "cases": list or dict of lists}) with
    one query or merge case per line, so diffs stay readable."""
    one = lambda v: json.dumps(v, ensure_ascii=False, separators=(", ", ": "))
    lines = ["{", f' "about": {one(doc["about"])},']
    cases = doc["cases"]
    if isinstance(cases, dict):
        lines.append(' "cases": {')
        for n, (name, entries) in enumerate(cases.items()):
            lines.append(f"  {one(name)}: [")
            lines += [f"   {one(e)}" + ("," if i + 1 < len(entries) else "") for i, e in enumerate(entries)]
            lines.append("  ]" + ("," if n + 1 < len(cases) else ""))
        lines.append(" }")
    else:
        lines.append(' "cases": [')
        lines += [f"  {one(e)}" + ("," if i + 1 < len(cases) else "") for i, e in enumerate(cases)]
        lines.append(" ]")
    lines.append("}")
    text = "\n".join(lines) + "\n"
    assert json.loads(text) == json.loads(json.dumps(doc))
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--fixtures",
        default=os.environ.get("SHARDVEC_FIXTURES")
        or os.path.join(ROOT, "tests", "fixtures", "peer"),
    )
    args = ap.parse_args()
    with open(os.path.join(args.fixtures, "index.json")) as f:
        names = [c["case"] for c in json.load(f)["cases"]]
    rng = np.random.default_rng(20261121)
    out = {
        "about": "Expected routes computed by tests/golden/make_routes.py from docs/format.md's "
        "rules, independently of shardvec; checked by tests/it/golden_routes.rs (native) "
        "and tests/wasm/golden.test.mjs (wasm). Each query lists args (num_probes, shard_ids, "
        "routing_context; {} = the manifest's defaults) and the expected shard list.",
        "cases": {},
    }
    checked = 0
    for name in names:
        snap = load_case(args.fixtures, name)
        checked += check_recorded(snap)
        out["cases"][name] = golden_for(snap, rng)
    write_json(os.path.join(HERE, "routes.json"), out)
    merge = {
        "about": "Merge cases: per-shard result lists in query order and the expected global "
        "top_k, computed by tests/golden/make_routes.py with a stable sort on score "
        "(ties keep arrival order; -0.0 equals 0.0). Checked by golden_routes.rs and "
        "tests/wasm/golden.test.mjs.",
        "cases": merge_cases(rng),
    }
    write_json(os.path.join(HERE, "merge.json"), merge)
    n_q = sum(len(v) for v in out["cases"].values())
    n_r = sum(len(e["expect"]) for v in out["cases"].values() for e in v)
    print(
        f"{checked} recorded routes reproduced; wrote {n_q} queries / {n_r} routes "
        f"and {len(merge['cases'])} merge cases",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
