"""`whyrec feedback record` and `whyrec feedback analyze`."""
from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner
from whyrec.errors import DataError, RegistryError, WhyrecError
from whyrec.plugins import PluginHost

import whyrec_feedback


@pytest.fixture
def cli():
    """A click group with the commands this plugin registers (as `whyrec` gets them)."""
    host = PluginHost()
    host.add(whyrec_feedback, "whyrec-feedback")
    group = click.Group("whyrec")
    host.pm.hook.register_commands(cli=group)
    return group


def run(cli, *args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=True)


def test_record_then_analyze(cli, tmp_path):
    log = tmp_path / "feedback.jsonl"
    for k, (variant, clicked) in enumerate([("A", 1), ("A", 0), ("B", 1), ("B", 1), ("A", 0), ("B", 0)]):
        r = run(cli, "feedback", "record", log, "--event", "impression", "--user", k, "--item", 7, "--position", 1,
                "--variant", variant, "--label", clicked, "--event-id", f"e{k}")
        assert r.exit_code == 0, r.output
        assert f"recorded impression e{k}" in r.output
    r = run(cli, "feedback", "record", log, "--event", "explanation_feedback", "--user", 1, "--item", 7,
            "--explanation-method", "tree-shap", "--explanation-format", "text", "--helpful")
    assert r.exit_code == 0, r.output
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert len(lines) == 7 and lines[0]["user"] == 0 and lines[-1]["helpful"] is True
    # a repeated event id is stored (the log is append-only) and counted once
    run(cli, "feedback", "record", log, "--event", "impression", "--user", 0, "--item", 7, "--variant", "A",
        "--label", 1, "--event-id", "e0")
    r = run(cli, "feedback", "analyze", log, "-p", "control=A", "-p", "min_exposures=1", "--format", "json")
    assert r.exit_code == 0, r.output
    s = json.loads(r.output)
    assert s["per_arm"]["A"] == {"exposures": 3, "clicks": 1, "ctr": pytest.approx(1 / 3),
                                 "ci_low": pytest.approx(s["per_arm"]["A"]["ci_low"]), "ci_high": pytest.approx(s["per_arm"]["A"]["ci_high"])}
    assert s["per_arm"]["B"]["clicks"] == 2
    assert s["input"]["duplicate_event_ids"] == 1
    assert s["explanations"]["helpfulness_by_method"]["tree-shap"]["helpful"] == 1
    text = run(cli, "feedback", "analyze", log, "-p", "control=A")
    assert "A/B test of ctr by variant (control: A)" in text.output and "1 duplicate event id(s) counted once" in text.output


def test_malformed_line_is_reported_and_skipped(cli, tmp_path):
    log = tmp_path / "feedback.jsonl"
    rows = [{"event_id": k, "user": k, "item": 1, "variant": "AB"[k % 2], "label": int(k % 3 == 0)} for k in range(20)]
    text = [json.dumps(r) for r in rows]
    text.insert(2, '{"event_id": 99, "user": ')  # line 3: truncated
    log.write_text("\n".join(text) + "\n")
    r = CliRunner().invoke(cli, ["feedback", "analyze", str(log), "-p", "control=A", "--format", "json"])
    assert r.exit_code == 0
    assert f"warning: {log}: line 3:" in r.stderr and "(line skipped, the other lines are kept)" in r.stderr
    s = json.loads(r.stdout)
    assert s["input"]["malformed_lines"][0]["line"] == 3
    assert s["per_arm"]["A"]["exposures"] + s["per_arm"]["B"]["exposures"] == 20
    strict = run(cli, "feedback", "analyze", log, "--strict")
    assert isinstance(strict.exception, DataError) and "line 3 is not a valid event" in str(strict.exception)


def test_off_policy_on_a_parquet_file_and_saving(cli, obd, tmp_path):
    path = tmp_path / "obd.parquet"
    obd.to_parquet(path)
    out = tmp_path / "report"
    r = run(cli, "feedback", "analyze", path, "--analyzer", "off-policy", "-p", "logging_variant=bts",
            "-p", "reference_variant=random", "-p", "bootstrap=200", "--out", out)
    assert r.exit_code == 0, r.output
    assert "off-policy estimate of target uniform" in r.output and "on-policy CTR of 'random': 0.0038" in r.output
    assert {"summary.json", "estimates.csv", "estimates.png"} <= {p.name for p in out.iterdir()}
    r = run(cli, "feedback", "analyze", path, "-a", "off-policy", "-p", "target=ranking", "-p", "ranking=[7, 61, 555]",
            "-p", "logging_variant=bts", "-p", "bootstrap=100", "--format", "json")
    s = json.loads(r.stdout)
    assert s["supported"] is False and s["unsupported"]["items_never_logged"] == [555]


def test_cli_bad_input(cli, tmp_path):
    r = run(cli, "feedback", "analyze", tmp_path / "none.jsonl")
    assert isinstance(r.exception, DataError) and "no such events file" in str(r.exception)
    (tmp_path / "e.jsonl").write_text('{"user": 1, "item": 2, "label": 1}\n')
    r = run(cli, "feedback", "analyze", tmp_path / "e.jsonl", "--analyzer", "ab-tst")
    assert isinstance(r.exception, RegistryError) and "did you mean 'ab-test'?" in str(r.exception)
    r = run(cli, "feedback", "analyze", tmp_path / "e.jsonl", "-p", "contrl=A")
    assert isinstance(r.exception, WhyrecError) and "has no parameter 'contrl'; did you mean 'control'?" in str(r.exception)
    r = run(cli, "feedback", "analyze", tmp_path / "e.jsonl", "-p", "control")
    assert "expected KEY=VALUE" in str(r.exception)
    r = run(cli, "feedback", "record", tmp_path / "e.jsonl", "--event", "impression", "--user", 1, "--item", 2, "--propensity", 0)
    assert isinstance(r.exception, DataError) and "not a probability in (0, 1]" in str(r.exception)
    r = run(cli, "feedback", "record", tmp_path / "e.jsonl", "--event", "explanation_feedback", "--user", 1, "--item", 2,
            "--explanation-method", "tree-shap")
    assert "needs helpful = true/false" in str(r.exception)
    assert len((tmp_path / "e.jsonl").read_text().splitlines()) == 1  # nothing was appended


def test_whyrec_cli_prints_one_line_and_exits_2(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "whyrec.cli", "feedback", "analyze", str(tmp_path / "x.csv")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and proc.stderr.startswith("error: ") and "no such events file" in proc.stderr


def test_analyze_param_of_the_wrong_type_is_one_line(cli, tmp_path):
    (tmp_path / "e.jsonl").write_text('{"user": 1, "item": 2, "label": 1, "variant": "A"}\n')
    r = run(cli, "feedback", "analyze", tmp_path / "e.jsonl", "-p", "alpha=high")
    assert isinstance(r.exception, WhyrecError)
    assert str(r.exception) == "analyzer 'ab-test': -p alpha: expected float, got str 'high'"
    r = run(cli, "feedback", "analyze", tmp_path / "e.jsonl", "-a", "off-policy", "-p", "alpah=0.1")
    assert isinstance(r.exception, WhyrecError) and "has no parameter 'alpah'; did you mean 'alpha'?" in str(r.exception)


@pytest.mark.parametrize("opts, message", [
    (["--timestamp", "yesterday"], "timestamp 'yesterday' is not a time; use ISO 8601"),
    (["--timestamp", "2026-13-45"], "timestamp '2026-13-45' is not a time"),
    (["--timestamp", "nan"], "timestamp 'nan' is not a time"),
    (["--position", "-1"], "position -1 is not a slot number: positions are whole numbers from 0"),
])
def test_record_refuses_bad_timestamp_and_position_and_writes_nothing(cli, tmp_path, opts, message):
    log = tmp_path / "f.jsonl"
    r = run(cli, "feedback", "record", log, "--event", "impression", "--user", 42, "--item", 7, *opts)
    assert isinstance(r.exception, DataError) and message in str(r.exception)
    assert "seconds since the epoch" in str(r.exception) or "position" in message
    assert not log.exists()


def test_recorded_timestamps_are_read_back_by_analyze(cli, tmp_path):
    log = tmp_path / "f.jsonl"
    for k, ts in enumerate(["1764410400", "2026-11-29T10:00:00Z", "2026-11-29", "2026-11-29T11:00:00+01:00"]):
        r = run(cli, "feedback", "record", log, "--event", "impression", "--user", k, "--item", 7, "--position", 0,
                "--variant", "AB"[k % 2], "--label", k % 2, "--timestamp", ts)
        assert r.exit_code == 0, r.output
    first = json.loads(log.read_text().splitlines()[0])
    assert first["timestamp"] == "2025-11-29T10:00:00+00:00" and first["position"] == 0  # epoch seconds stored as ISO 8601
    from whyrec_feedback.store import normalise, read_events

    ts = normalise(read_events(log).events).table["timestamp"]
    assert [t.isoformat() for t in ts] == ["2025-11-29T10:00:00+00:00", "2026-11-29T10:00:00+00:00",
                                           "2026-11-29T00:00:00+00:00", "2026-11-29T10:00:00+00:00"]


def test_whyrec_cli_bad_param_type_is_one_line_exit_2(tmp_path):
    (tmp_path / "e.jsonl").write_text('{"user": 1, "item": 2, "label": 1, "variant": "A"}\n')
    proc = subprocess.run([sys.executable, "-m", "whyrec.cli", "feedback", "analyze", str(tmp_path / "e.jsonl"), "-p", "alpha=high"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == "error: analyzer 'ab-test': -p alpha: expected float, got str 'high'\n"


@pytest.mark.parametrize("position", [float("inf"), float("nan"), -1, 1.5, True])
def test_python_api_refuses_positions_that_are_not_slots(position):
    from whyrec.errors import DataError
    from whyrec_feedback.store import make_event

    with pytest.raises(DataError, match="is not a slot number"):
        make_event("impression", 1, 2, position=position)
    assert make_event("impression", 1, 2, position=3.0)["position"] == 3
