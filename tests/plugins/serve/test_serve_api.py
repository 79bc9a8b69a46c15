"""`whyrec serve`'s HTTP API on a small run: answers equal to the CLI's, bad input, live events."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from whyrec.atomic import to_json
from whyrec.errors import RunDirError
from whyrec.explain import why_above_json
from whyrec.rundir import Run

EVENTS = Path("plugins") / "whyrec-serve" / "events.jsonl"


def whyrec_cli(*args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "whyrec"
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=300)


def test_recommend_equals_the_cli_json(client, run_copy):
    r = client.get("/recommend", params={"user": 3, "k": 4, "explain": "tree-shap,exact-field-shapley", "device": "ios"})
    assert r.status_code == 200, r.text
    cli = whyrec_cli("explain", str(run_copy), "--user", "3", "-k", "4", "--method", "tree-shap", "--method",
                     "exact-field-shapley", "--context", "device=ios", "--format", "json")
    assert cli.returncode == 0, cli.stderr
    assert r.json() == json.loads(cli.stdout)
    got = r.json()
    assert [rec["rank"] for rec in got["recommendations"]] == [1, 2, 3, 4]
    assert [e["method"] for e in got["recommendations"][0]["explanations"]] == ["tree-shap", "exact-field-shapley"]
    assert got["context"]["source"] == {"evening": "user-latest", "device": "explicit"}


def test_recommend_with_sentences_equals_the_cli(client, run_copy):
    r = client.get("/recommend", params={"user": 3, "k": 3, "explain": "tree-shap", "lang": "zh", "device": "ios"})
    assert r.status_code == 200, r.text
    cli = whyrec_cli("explain", str(run_copy), "--user", "3", "-k", "3", "--method", "tree-shap", "--context", "device=ios",
                     "--lang", "zh", "--format", "json")
    assert cli.returncode == 0, cli.stderr
    assert r.json() == json.loads(cli.stdout)
    assert all(rec["text"] for rec in r.json()["recommendations"]) and r.json()["sentences"]["lang"] == "zh"


def test_default_methods_and_why_above_equal_the_core(client, run_copy):
    from whyrec.explain import explain_user

    r = client.get("/recommend", params={"user": 5, "k": 3})
    assert r.json() == json.loads(to_json(explain_user(Run(run_copy), 5, 3), fallback=str))
    items = [rec["item"] for rec in r.json()["recommendations"]]
    w = client.get("/why-above", params={"user": 5, "a": items[0], "b": items[2], "explain": "tree-shap"})
    assert w.status_code == 200, w.text
    want = json.loads(to_json(why_above_json(Run(run_copy), 5, items[0], items[2], methods=("tree-shap",)), fallback=str))
    assert w.json() == want
    assert w.json()["rank_a"] == 1 and w.json()["rank_b"] == 3
    diff = w.json()["difference"]
    assert sum(diff.values()) + w.json()["base_gap"] == pytest.approx(w.json()["score_gap"], abs=1e-6)


@pytest.mark.parametrize("params, status, words", [
    ({"user": 999}, 404, "user '999' is not in dataset"),
    ({"user": 3, "k": 0}, 422, "k=0: use 1 <= k <= "),
    ({"user": 3, "k": 10_000}, 422, "k=10000: use 1 <= k <= "),
    ({"user": 3, "k": "ten"}, 422, "k: "),
    ({"user": 3, "explain": "tree-shapp"}, 422, "explainer 'tree-shapp' is not one for model 'lightgbm'; explainers that are: tree-shap, exact-field-shapley"),
    ({"user": 3, "explain": " , "}, 422, "name at least one explainer"),
    ({"user": 3, "model": "xgboost"}, 422, "model 'xgboost' is not in this run; models: lightgbm"),
    ({"user": 3, "colour": "red"}, 422, "unknown query parameter 'colour'; parameters: explain, k, lang, model, user (context features: evening, device)"),
    ({"user": 3, "device": "blackberry"}, 422, "'blackberry' is not a value of 'device'"),
    ({"user": 3, "evening": "late"}, 422, "'evening' is numeric; give a number"),
    ({}, 422, "query.user: Field required"),
    ({"user": 3, "lang": "fr"}, 422, "query.lang: Input should be 'en' or 'zh'"),
])
def test_bad_recommend_requests_get_one_line_naming_the_fix(ro_client, params, status, words):
    r = ro_client.get("/recommend", params=params)
    assert r.status_code == status, r.text
    assert words in r.json()["error"]
    assert "\n" not in r.json()["error"]


def test_unknown_user_and_k_bounds_name_the_value(ro_client, served_run):
    client = ro_client
    r = client.get("/recommend", params={"user": 999})
    assert r.json()["user"] == "999"
    n = len(Run(served_run).load_data().candidates(3))
    r = client.get("/recommend", params={"user": 3, "k": n + 1})
    assert r.json()["valid"] == {"min": 1, "max": n}
    assert client.get("/recommend", params={"user": 3, "k": n, "explain": "tree-shap"}).status_code == 200
    r = client.get("/why-above", params={"user": 3, "a": 1, "b": 600})
    assert r.status_code == 422 and "item B '600' is not in dataset" in r.json()["error"]


@pytest.mark.parametrize("body, words", [
    (b"{not json", "JSON decode error"),
    (b"[1, 2]", "Input should be a valid dictionary"),
    (b'{"user": 3}', "item: Field required"),
    (b'{"user": 3, "item": 7}', "an event needs 'label'"),
    (b'{"user": 3, "item": 7, "label": 1, "colour": "red"}', "event field 'colour' is not a column of dataset"),
    (b'{"user": 3, "item": 600, "label": 1}', "item 600 is not in dataset 'table'"),
    (b'{"user": 999, "item": 7, "label": 1}', "user 999 is not in dataset 'table'"),
    (b'{"user": 3, "item": 7, "label": 1, "device": "fax"}', "'fax' is not a value of 'device'"),
    (b'{"user": 3, "item": 7, "label": 1, "timestamp": "noon"}', "event field 'timestamp' is 'noon'; column 'timestamp' of dataset 'table' holds numbers"),
])
def test_bad_events_are_refused_and_nothing_is_written(ro_client, served_run, body, words):
    client, run_copy = ro_client, served_run
    r = client.post("/events", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert words in r.json()["error"]
    assert not (run_copy / EVENTS).exists()
    assert client.get("/readyz").json()["events_applied"] == 0


def test_an_oversized_body_is_refused_with_the_limit(ro_client, served_run):
    client, run_copy = ro_client, served_run
    from whyrec_serve.app import MAX_BODY

    big = json.dumps({"user": 3, "item": 7, "label": 1, "pad": "x" * MAX_BODY}).encode()
    r = client.post("/events", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert r.json() == {"error": f"request body over {MAX_BODY:,} bytes; send one event per request (a few hundred bytes)",
                        "limit_bytes": MAX_BODY}
    assert not (run_copy / EVENTS).exists()


def test_an_oversized_query_or_header_is_refused_with_the_limit(ro_client):
    from whyrec_serve.app import MAX_HEADERS, MAX_QUERY

    r = ro_client.get("/recommend", params={"user": "1" * (MAX_QUERY + 1)})
    assert (r.status_code, r.json()) == (414, {"error": f"query string over {MAX_QUERY:,} bytes; ask for fewer explainers or "
                                                        "shorter ids", "limit_bytes": MAX_QUERY})
    r = ro_client.get("/healthz", headers={"x-pad": "y" * MAX_HEADERS})
    assert (r.status_code, r.json()["limit_bytes"]) == (431, MAX_HEADERS)
    r = ro_client.get("/recommend", params={"user": "1" * 201})  # under the limit, over the id's length
    assert r.status_code == 422 and "query.user: String should have at most 200 characters" in r.json()["error"]


def test_an_incomplete_run_is_refused_at_start_up(run_copy):
    from whyrec_serve.app import create_app

    mf = json.loads((run_copy / "manifest.json").read_text())
    mf["status"] = "failed"
    (run_copy / "manifest.json").write_text(json.dumps(mf))
    with pytest.raises(RunDirError, match="the run is 'failed', not complete; `whyrec serve` answers only from a complete run"):
        create_app(run_copy)
    res = whyrec_cli("serve", str(run_copy), "--port", "0")
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [f"error: {run_copy}: the run is 'failed', not complete; `whyrec serve` answers "
                                               "only from a complete run: rerun `whyrec run`, or serve another run"]


def test_an_event_changes_the_next_recommendation_and_is_logged(client, run_copy):
    from whyrec.session import LiveHistory

    before = client.get("/recommend", params={"user": 3, "k": 5, "explain": "tree-shap"}).json()
    top = before["recommendations"][0]["item"]
    state = client.app.state.holder["state"]
    data = state.session.data
    old = data.features(data.user_pairs(3, [top]))[["hist_0", "hist_1", "hist_2", "hist_len"]].iloc[0].tolist()
    r = client.post("/events", json={"user": 3, "item": top, "label": 1, "device": "web"})
    assert r.status_code == 201, r.text
    after = client.get("/recommend", params={"user": 3, "k": 5, "explain": "tree-shap"}).json()
    assert top not in [rec["item"] for rec in after["recommendations"]]  # interacted with: no longer a candidate
    assert after["context"] == {"values": {"evening": before["context"]["values"]["evening"], "device": "web"},
                                "source": {"evening": "user-latest", "device": "user-latest"}}
    X = data.features(data.user_pairs(3, [data.candidates(3)[0]]))  # an unseen item: the whole history
    assert X[["hist_0", "hist_1", "hist_2"]].iloc[0].tolist() == [float(top), old[0], old[1]]  # newest first, oldest out
    assert X["hist_len"].iloc[0] == 3.0
    assert data.describe_feature("hist_0", float(top), X.iloc[0]) == f"you recently liked item {top}"
    assert isinstance(data.featurizer, LiveHistory)
    # the log line is the feedback store's event: a click with the interaction's columns
    line = json.loads((run_copy / EVENTS).read_text())
    assert {k: line[k] for k in ("event", "user", "item", "label", "device", "source")} == {
        "event": "click", "user": 3, "item": top, "label": 1.0, "device": "web", "source": "whyrec-serve"}
    # a negative interaction changes the candidates but not the history
    other = data.candidates(3)[0]
    r = client.post("/events", json={"user": 3, "item": int(other), "label": 0})
    assert json.loads((run_copy / EVENTS).read_text().splitlines()[1])["event"] == "impression"
    X2 = data.features(data.user_pairs(3, [data.candidates(3)[0]]))
    assert X2[["hist_0", "hist_1", "hist_2"]].iloc[0].tolist() == [float(top), old[0], old[1]]
    assert other not in data.candidates(3)


def test_a_restart_replays_the_event_log(run_copy):
    from fastapi.testclient import TestClient
    from whyrec_serve.app import create_app

    with TestClient(create_app(run_copy, background_warm=False)) as c:
        c.post("/events", json={"user": 4, "item": 11, "label": 1})
        c.post("/events", json={"user": 4, "item": 12, "label": 1})
        first = c.get("/recommend", params={"user": 4, "k": 5}).json()
    with TestClient(create_app(run_copy, background_warm=False)) as c:
        ready = c.get("/readyz").json()
        assert ready["events_applied"] == 2 and ready["events_skipped"] == 0
        assert c.get("/recommend", params={"user": 4, "k": 5}).json() == first
        data = c.app.state.holder["state"].session.data
        assert data.features(data.user_pairs(4, [data.candidates(4)[0]]))[["hist_0", "hist_1"]].iloc[0].tolist() == [12.0, 11.0]
        assert {11, 12} <= data.seen(4)


def test_health_readiness_metrics_and_schema(client):
    assert client.get("/healthz").json()["status"] == "ok"
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["models"] == {"lightgbm": ["tree-shap", "exact-field-shapley"]}
    client.get("/recommend", params={"user": 3, "k": 2, "explain": "tree-shap"})
    client.get("/recommend", params={"user": 999})
    text = client.get("/metrics").text
    assert 'whyrec_requests_total{endpoint="/recommend",method="GET",status="200"} 1.0' in text
    assert 'whyrec_requests_total{endpoint="/recommend",method="GET",status="404"} 1.0' in text
    assert 'whyrec_request_seconds_count{endpoint="/recommend"} 2.0' in text
    assert 'whyrec_explainer_seconds_count{explainer="tree-shap",model="lightgbm"}' in text
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/recommend", "/why-above", "/events", "/healthz", "/readyz", "/metrics", "/admin/reload"} <= set(paths)
    assert client.get("/docs").status_code == 200


def test_answer_cache_is_dropped_by_an_event(run_copy):
    from fastapi.testclient import TestClient
    from whyrec_serve.app import create_app

    with TestClient(create_app(run_copy, background_warm=False, cache_size=8)) as c:
        a = c.get("/recommend", params={"user": 6, "k": 3}).json()
        assert c.get("/recommend", params={"user": 6, "k": 3}).json() == a
        assert c.get("/readyz").json()["answer_cache"] == {"size": 8, "hits": 1, "misses": 1}
        c.post("/events", json={"user": 6, "item": a["recommendations"][0]["item"], "label": 1})
        b = c.get("/recommend", params={"user": 6, "k": 3}).json()
        assert a["recommendations"][0]["item"] not in [r["item"] for r in b["recommendations"]]
        assert c.get("/readyz").json()["answer_cache"]["misses"] == 2


def test_a_reload_to_a_bad_run_is_refused_and_the_old_run_keeps_answering(ro_client, tmp_path):
    before = ro_client.get("/recommend", params={"user": 3, "k": 2}).json()
    r = ro_client.post("/admin/reload", json={"run": str(tmp_path / "nope")})
    assert r.status_code == 422
    assert r.json()["error"] == f"{tmp_path / 'nope'}: no such run directory; pass a directory under runs/ written by `whyrec run`"
    r = ro_client.post("/admin/reload", json={"rnu": "x"})
    assert r.status_code == 422 and r.json()["error"].startswith("rnu: Extra inputs are not permitted")
    assert ro_client.get("/recommend", params={"user": 3, "k": 2}).json() == before
    assert 'whyrec_reloads_total{outcome="failed"} 1.0' in ro_client.get("/metrics").text
