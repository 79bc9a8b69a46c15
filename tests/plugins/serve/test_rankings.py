"""Kept rankings (ExplainSession.recommend / rank_all) and answers computed at start-up
(`whyrec serve --warm-request`): equal to what is computed afresh, and dropped by an event."""
from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest
from whyrec.errors import DataError
from whyrec.rundir import Run
from whyrec.session import ExplainSession, LiveHistory


def session(run, size: int = 1000) -> ExplainSession:
    s = ExplainSession(Run(run))
    s.ranking_cache = size
    return s


def assert_same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a, b)
    assert a.attrs == b.attrs  # where the context came from


def test_kept_rankings_equal_the_models_own_at_every_k(served_run):
    s = session(served_run)
    m, data = s.model("lightgbm"), s.data
    for u in data.user_ids[:8]:
        n = len(data.candidates(u))
        for k in (1, 3, n):
            assert_same(s.recommend("lightgbm", u, k), m.recommend(u, k))
    assert len(s._rankings) == 8
    with pytest.raises(DataError) as want:
        m.recommend(data.user_ids[0], 0)
    with pytest.raises(DataError) as got:
        s.recommend("lightgbm", data.user_ids[0], 0)
    assert str(got.value) == str(want.value)


def test_rank_all_in_batches_equals_one_user_at_a_time(served_run):
    s = session(served_run)
    m, data = s.model("lightgbm"), s.data
    assert s.rank_all("lightgbm", chunk_rows=130) == len(data.user_ids)  # a few users per batch
    assert len(s._rankings) == len(data.user_ids)
    for u in data.user_ids:
        kept = s._rankings[("lightgbm", u)]
        n = len(data.candidates(u))
        assert_same(kept.top(n), m.recommend(u, n))
    assert s.rank_all("lightgbm") == 0  # nothing left to rank


def test_no_rankings_are_kept_when_switched_off_or_for_an_explicit_context(served_run):
    s = session(served_run, size=0)
    m, u = s.model("lightgbm"), s.data.user_ids[2]
    assert_same(s.recommend("lightgbm", u, 3), m.recommend(u, 3))
    assert s.rank_all("lightgbm") == 0 and not s._rankings
    s.ranking_cache = 10
    ctx = {"device": "web", "evening": 0.0}
    assert_same(s.recommend("lightgbm", u, 3, context=ctx), m.recommend(u, 3, context=ctx))
    assert not s._rankings  # only the user's own latest context is kept


def test_least_recently_used_rankings_go_first(served_run):
    s = session(served_run, size=2)
    a, b, c = s.data.user_ids[:3]
    for u in (a, b, a, c):  # a was used after b
        s.recommend("lightgbm", u, 2)
    assert [u for _, u in s._rankings] == [a, c]


def test_an_event_drops_only_that_users_ranking(served_run):
    s = session(served_run)
    data, m = s.data, s.model("lightgbm")
    s.live = LiveHistory(data)
    u, other = data.user_ids[4], data.user_ids[5]
    before = s.recommend("lightgbm", u, 3)
    n = s.candidate_count(u)
    assert n == len(data.candidates(u))
    kept_other = s.recommend("lightgbm", other, 3) is not None and s._rankings[("lightgbm", other)]
    top = before["item"].iloc[0]
    ctx = "web" if before["device"].iloc[0] != "web" else "ios"
    s.live.add(s.live.check({"user": u, "item": top, "label": 1, "timestamp": 1e9, "evening": 1.0, "device": ctx}))
    after = s.recommend("lightgbm", u, 3)
    assert_same(after, m.recommend(u, 3))  # recomputed: the live history, seen items and context
    assert top not in after["item"].tolist() and (after["device"] == ctx).all()
    assert s._rankings[("lightgbm", other)] is kept_other
    assert s.candidate_count(u) == n - 1 == len(data.candidates(u))  # the item is seen now


def test_a_kept_ranking_gives_the_same_explanation_json(served_run):
    fresh, kept = session(served_run, size=0), session(served_run)
    kept.rank_all("lightgbm")
    for u in kept.data.user_ids[:3]:
        assert kept.explain(u, 3, methods=("tree-shap",)) == fresh.explain(u, 3, methods=("tree-shap",))


# -- whyrec serve --warm-request ---------------------------------------------------------------
@pytest.mark.parametrize("text, words", [
    ("k=0", "--warm-request: k='0'; give a whole number >= 1"),
    ("k=ten", "--warm-request: k='ten'; give a whole number >= 1"),
    ("user=3&k=10", "--warm-request: leave out 'user'; the request is answered for every user of the run"),
    ("k=3&lang=fr", "--warm-request: lang='fr'; use en or zh"),
    ("k=2&k=3", "--warm-request 'k=2&k=3': a parameter is given twice"),
    ("k", "--warm-request 'k': not a query string; write it as k=10&explain=tree-shap&model=NAME"),
])
def test_a_bad_warm_request_is_refused_naming_it(text, words):
    from whyrec_serve.app import parse_warm_request

    with pytest.raises(DataError) as exc:
        parse_warm_request(text)
    assert str(exc.value) == words


def test_the_cli_refuses_a_bad_warm_request_before_loading(served_run):
    from test_serve_api import whyrec_cli

    r = whyrec_cli("serve", str(served_run), "--port", "0", "--warm-request", "k=0&explain=tree-shap")
    assert r.returncode != 0
    assert r.stderr.strip().splitlines()[-1].endswith("--warm-request: k='0'; give a whole number >= 1")
    assert "Traceback" not in r.stderr


def test_warm_answers_equal_computed_ones_and_an_event_refreshes_them(run_copy):
    from fastapi.testclient import TestClient
    from whyrec.atomic import to_json
    from whyrec_serve.app import create_app

    users = Run(run_copy).load_data().user_ids
    with TestClient(create_app(run_copy, background_warm=False, warm_request="k=3&explain=tree-shap")) as c:
        info = c.get("/readyz").json()
        assert info["prefilled_answers"] == len(users) and info["rankings"]["kept"] == len(users)
        assert info["answer_cache"] == {"size": len(users), "hits": 0, "misses": len(users)}
        a = c.get("/recommend", params={"user": 6, "k": 3, "explain": "tree-shap"}).json()
        want = json.loads(to_json(ExplainSession(Run(run_copy)).explain(6, 3, methods=("tree-shap",)), indent=None, fallback=str))
        assert a == want
        assert c.get("/readyz").json()["answer_cache"]["hits"] == 1
        # another request shape is computed (and kept) as usual
        assert c.get("/recommend", params={"user": 6, "k": 2, "explain": "tree-shap"}).status_code == 200
        assert c.get("/readyz").json()["answer_cache"]["misses"] == len(users) + 1
        top = a["recommendations"][0]["item"]
        c.post("/events", json={"user": 6, "item": top, "label": 1})
        b = c.get("/recommend", params={"user": 6, "k": 3, "explain": "tree-shap"}).json()
        assert top not in [r["item"] for r in b["recommendations"]]
        assert c.get("/readyz").json()["answer_cache"]["misses"] == len(users) + 2
        # the metrics count requests, not the start-up answers
        assert 'whyrec_explainer_seconds_count{explainer="tree-shap",model="lightgbm"} 2.0' in c.get("/metrics").text


def test_a_warm_request_naming_an_unknown_model_fails_start_up_naming_it(served_run):
    from fastapi.testclient import TestClient
    from whyrec_serve.app import create_app

    with TestClient(create_app(served_run, warm_request="k=3&model=nope")) as c:
        t = time.time()
        while (r := c.get("/readyz")).json()["status"] == "loading" and time.time() - t < 120:
            time.sleep(0.2)
        assert r.status_code == 503
        assert r.json()["error"] == "DataError: --warm-request: model 'nope' is not in this run; models: lightgbm"
        assert c.get("/recommend", params={"user": 6}).status_code == 503


def test_kept_scores_are_the_models_scores(served_run):
    s = session(served_run)
    m, data = s.model("lightgbm"), s.data
    u = data.user_ids[7]
    kept = s._ranking("lightgbm", m, u)
    pairs = data.user_pairs(u, kept.items)
    np.testing.assert_array_equal(m.score(pairs), kept.scores)
