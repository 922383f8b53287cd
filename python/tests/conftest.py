"""Shared helpers of the Python tests: the peer fixtures (snapshots written
by shardyfusion, with its reader's recorded answers) and how answers are
compared with them (the same rules as the Rust tests, tests/src/fixtures.rs)."""

import json
import pathlib

import pytest

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "peer"


def case_names():
    return sorted(p.stem for p in FIXTURES.glob("*.json") if p.stem != "index")


def load_case(name):
    return json.loads((FIXTURES / f"{name}.json").read_text())


def halved_scores_allowed(name):
    # lancedb 0.40 reported 2·(1 − cos) on indexed cosine shards where the
    # lancedb crate reports 1 − cos (tests/fixtures/peer/README.md).
    return name.startswith("lancedb_") and "cosine" in name


def close(a, b):
    return abs(a - b) <= 1e-4 * max(abs(a), abs(b), 1e-6)


def assert_results(what, got, want, halved=False):
    assert len(got) == len(want), f"{what}: {len(got)} results, recorded {len(want)}"
    for i, (g, w) in enumerate(zip(got, want)):
        assert close(g.score, w["score"]) or (halved and close(g.score, w["score"] / 2)), (
            f"{what}: score {i}: {g.score} vs recorded {w['score']}"
        )
        if g.id != w["id"]:
            tied = [r for r in want if close(r["score"], w["score"])]
            assert len(tied) > 1 and any(r["id"] == g.id for r in tied), (
                f"{what}: result {i} is {g.id!r}, recorded {w['id']!r}"
            )
            w = next(r for r in want if r["id"] == g.id)
        assert g.payload == w["payload"], f"{what}: payload of {g.id!r}"


@pytest.fixture(params=case_names())
def case(request):
    return request.param, load_case(request.param)
