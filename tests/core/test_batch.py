"""explain-batch: chunked, resumable batch explanations (core/whyrec/batch.py)."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import batch_toy as bt
from whyrec import builtins
from whyrec.batch import (
    SUCCESS_FILE, ChunkExplainer, _DirLock, explain_pairs_batched, part_name, read_batch_output,
)
from whyrec.builtins.executors import LocalExecutor
from whyrec.errors import DataError, RegistryError, RunDirError, UnsupportedError
from whyrec.plugins import PluginHost
from whyrec_example_plugin.popularity import PopularityModel, PopularityReason

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def toy():
    return bt.fitted()


def run(toy, pairs, out, **kw):
    data, model = toy
    kw.setdefault("show_progress", False)
    return explain_pairs_batched(model, data, kw.pop("explainer", bt.LinearExplainer()), pairs, out, **kw)


def expected_linear(toy, pairs_df: pd.DataFrame) -> pd.DataFrame:
    """The same explanation computed in memory in one call, for comparison."""
    data, model = toy
    e = bt.LinearExplainer().explain(model, data, pairs_df[["user", "item"]])
    return pd.concat([e.pairs[["output_value", "base_value", "additivity_error"]],
                      e.attributions.add_prefix("attr__"), e.field_attributions.add_prefix("field__")], axis=1)


# -- output ----------------------------------------------------------------------------------
def test_output_matches_in_memory_explanation_row_for_row(toy, tmp_path):
    df = bt.write_pairs(tmp_path / "p.parquet", 1000, toy[0])
    res = run(toy, tmp_path / "p.parquet", tmp_path / "out", chunk_rows=300)
    assert (res.rows, res.parts, res.parts_written, res.parts_reused) == (1000, 4, 4, 0)
    assert sorted(p.name for p in (tmp_path / "out").glob("part-*")) == [part_name(i) for i in range(4)]
    assert [pq.read_metadata(tmp_path / "out" / part_name(i)).num_rows for i in range(4)] == [300, 300, 300, 100]
    got = read_batch_output(tmp_path / "out")
    assert got["row"].tolist() == list(range(1000))
    assert got[["user", "item", "request_id"]].equals(df)  # input columns kept, in input order
    assert (got["status"] == "explained").all() and got["unknown"].isna().all()
    want = expected_linear(toy, df)
    pd.testing.assert_frame_equal(got[want.columns], want, check_exact=True)
    # the explainer is exact: attributions add up to the score minus the base value
    np.testing.assert_allclose(got.filter(like="attr__").sum(axis=1) + got["base_value"], got["output_value"], atol=1e-12)

    manifest = json.loads((tmp_path / "out" / SUCCESS_FILE).read_text())
    assert manifest["rows_in"] == manifest["rows_out"] == 1000
    assert [p["rows"] for p in manifest["parts"]] == [300, 300, 300, 100]
    assert manifest["counts"] == {"explained": 1000, "cold_start": 0, "skipped": 0, "unknown_user": 0, "unknown_item": 0}
    assert manifest["method"] == "linear-exact" and manifest["cold_start"] == "skip"


def test_chunk_size_does_not_change_the_output(toy, tmp_path):
    bt.write_pairs(tmp_path / "p.parquet", 500, toy[0], row_group_size=64)
    run(toy, tmp_path / "p.parquet", tmp_path / "a", chunk_rows=7)
    run(toy, tmp_path / "p.parquet", tmp_path / "b", chunk_rows=10_000)
    a, b = read_batch_output(tmp_path / "a"), read_batch_output(tmp_path / "b")
    assert len(list((tmp_path / "a").glob("part-*"))) == 72
    pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_threaded_local_executor_gives_the_same_rows(toy, tmp_path):
    bt.write_pairs(tmp_path / "p.parquet", 900, toy[0])
    run(toy, tmp_path / "p.parquet", tmp_path / "one", chunk_rows=100)
    run(toy, tmp_path / "p.parquet", tmp_path / "two", chunk_rows=100, executor=LocalExecutor(workers=2))
    pd.testing.assert_frame_equal(read_batch_output(tmp_path / "one"), read_batch_output(tmp_path / "two"), check_exact=True)


def test_sample_plugin_explainer_in_batches_equals_one_call(tmp_path):
    """A third-party model/explainer pair (the sample plugin) works unchanged in batches."""
    data = bt.make_data(seed=3)
    model = PopularityModel()
    model.fit(data)
    df = bt.write_pairs(tmp_path / "p.parquet", 250, data)
    res = explain_pairs_batched(model, data, PopularityReason(), tmp_path / "p.parquet", tmp_path / "out",
                                chunk_rows=64, show_progress=False)
    assert res.parts == 4
    got = read_batch_output(tmp_path / "out")
    one = PopularityReason().explain(model, data, df[["user", "item"]])
    np.testing.assert_array_equal(got["attr__item_popularity"], one.attributions["item_popularity"])
    np.testing.assert_array_equal(got["attr__user_activity"], one.attributions["user_activity"])
    np.testing.assert_array_equal(got["output_value"], one.pairs["output_value"])


def test_empty_pairs_file_is_refused_and_nothing_is_written(toy, tmp_path):
    pd.DataFrame({"user": pd.Series([], dtype="int64"), "item": pd.Series([], dtype="int64")}).to_parquet(tmp_path / "p.parquet")
    with pytest.raises(DataError, match=r"p\.parquet: pairs file has no rows; explain-batch needs at least one \(user, item\) pair"):
        run(toy, tmp_path / "p.parquet", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_pairs_missing_a_column_is_refused(toy, tmp_path):
    pd.DataFrame({"user": [1, 2], "movie": [3, 4]}).to_parquet(tmp_path / "p.parquet")
    with pytest.raises(DataError, match=r"p\.parquet: pairs file has no column 'item' \(columns: \['user', 'movie'\]\)"):
        run(toy, tmp_path / "p.parquet", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_pairs_that_are_not_parquet_or_absent_are_refused(toy, tmp_path):
    (tmp_path / "p.parquet").write_text("user,item\n1,2\n")
    with pytest.raises(DataError, match="not a readable Parquet file"):
        run(toy, tmp_path / "p.parquet", tmp_path / "out")
    with pytest.raises(DataError, match="no such pairs file"):
        run(toy, tmp_path / "nope.parquet", tmp_path / "out")


def test_id_column_of_the_wrong_type_is_refused(toy, tmp_path):
    pd.DataFrame({"user": ["1", "2"], "item": [3, 4]}).to_parquet(tmp_path / "p.parquet")
    with pytest.raises(DataError, match=r"column 'user' holds text \(large_string\) but dataset 'batch-toy' user ids are numbers \(int64, e.g. \[1, 2, 3\]\)"):
        run(toy, tmp_path / "p.parquet", tmp_path / "out")


def test_input_column_clashing_with_output_is_refused(toy, tmp_path):
    pd.DataFrame({"user": [1], "item": [3], "status": ["x"]}).to_parquet(tmp_path / "p.parquet")
    with pytest.raises(DataError, match=r"column\(s\) \['status'\] clash"):
        run(toy, tmp_path / "p.parquet", tmp_path / "out")


def test_bad_options_are_refused(toy, tmp_path):
    bt.write_pairs(tmp_path / "p.parquet", 10, toy[0])
    with pytest.raises(DataError, match="cold_start must be one of"):
        run(toy, tmp_path / "p.parquet", tmp_path / "out", cold_start="drop")
    with pytest.raises(DataError, match="chunk_rows must be a positive integer"):
        run(toy, tmp_path / "p.parquet", tmp_path / "out", chunk_rows=0)
    with pytest.raises(UnsupportedError, match="does not support model"):
        run(toy, tmp_path / "p.parquet", tmp_path / "out", explainer=PopularityReason())


def test_unknown_users_and_items_skipped_are_counted_and_kept(toy, tmp_path):
    df = bt.write_pairs(tmp_path / "p.parquet", 200, toy[0], unknown_users=7, unknown_items=5)
    res = run(toy, tmp_path / "p.parquet", tmp_path / "out", chunk_rows=50)
    assert res.counts == {"explained": 188, "cold_start": 0, "skipped": 12, "unknown_user": 7, "unknown_item": 5}
    got = read_batch_output(tmp_path / "out")
    assert len(got) == 200 and got["row"].tolist() == list(range(200))  # nothing dropped
    assert got["status"].tolist() == ["skipped"] * 12 + ["explained"] * 188
    assert got["unknown"].tolist()[:12] == ["user"] * 7 + ["item"] * 5
    assert got.loc[:11, "output_value"].isna().all() and got.loc[12:, "output_value"].notna().all()
    want = expected_linear(toy, df.iloc[12:].reset_index(drop=True))
    pd.testing.assert_frame_equal(got.loc[12:, want.columns].reset_index(drop=True), want, check_exact=True)


def test_unknown_users_and_items_explained_as_cold_start(toy, tmp_path):
    data, model = toy
    df = bt.write_pairs(tmp_path / "p.parquet", 60, data, unknown_users=4, unknown_items=3)
    res = run(toy, tmp_path / "p.parquet", tmp_path / "out", chunk_rows=25, cold_start="explain")
    assert res.counts == {"explained": 53, "cold_start": 7, "skipped": 0, "unknown_user": 4, "unknown_item": 3}
    got = read_batch_output(tmp_path / "out")
    assert got["status"].tolist()[:7] == ["cold_start"] * 7
    # the toy model scores an unknown user's features as the training mean: their attribution is 0
    assert (got.loc[:3, "attr__age"] == 0).all() and (got.loc[4:6, "attr__quality"] == 0).all()
    pd.testing.assert_frame_equal(got[expected_linear(toy, df).columns], expected_linear(toy, df), check_exact=True)


def test_explainer_that_cannot_explain_cold_start_says_to_skip(toy, tmp_path):
    bt.write_pairs(tmp_path / "p.parquet", 40, toy[0], unknown_users=2)
    with pytest.raises(UnsupportedError, match=r"explainer 'LinearExplainer' cannot explain pairs whose user or item the dataset "
                                               r"does not know \(users \[10000, 10001\] are not in dataset 'batch-toy'\); "
                                               r"use cold_start = skip \(--cold-start skip\)"):
        run(toy, tmp_path / "p.parquet", tmp_path / "out", cold_start="explain", explainer=bt.LinearExplainer(strict=True))
    # the failed job wrote no part: it leaves no claim (only the empty lock file), so following the advice into the same --out works
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["_job.lock"]
    res = run(toy, tmp_path / "p.parquet", tmp_path / "out", cold_start="skip", explainer=bt.LinearExplainer(strict=True))
    assert res.counts["skipped"] == 2 and res.counts["explained"] == 38


def test_a_new_job_that_fails_before_any_part_leaves_an_existing_empty_dir_empty(toy, tmp_path):
    bt.write_pairs(tmp_path / "p.parquet", 40, toy[0], unknown_users=2)
    (tmp_path / "out").mkdir()
    with pytest.raises(UnsupportedError, match="use cold_start = skip"):
        run(toy, tmp_path / "p.parquet", tmp_path / "out", cold_start="explain", explainer=bt.LinearExplainer(strict=True))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["_job.lock"]
    res = run(toy, tmp_path / "p.parquet", tmp_path / "out", cold_start="skip", explainer=bt.LinearExplainer(strict=True))
    assert res.counts["skipped"] == 2


def test_a_job_that_fails_after_writing_parts_keeps_its_claim_to_resume(toy, tmp_path):
    # unknown users in the last chunk only: the first part is written before the failure
    df = bt.write_pairs(tmp_path / "p.parquet", 40, toy[0])
    df.loc[35:, "user"] = 10_000
    df.to_parquet(tmp_path / "p.parquet", index=False)
    with pytest.raises(UnsupportedError, match="use cold_start = skip"):
        run(toy, tmp_path / "p.parquet", tmp_path / "out", cold_start="explain", chunk_rows=20, explainer=bt.LinearExplainer(strict=True))
    assert (tmp_path / "out" / "_job.json").exists() and (tmp_path / "out" / part_name(0)).exists()
    with pytest.raises(DataError, match=r"holds the parts of a different explain-batch job \(cold_start: 'explain' there, 'skip' now\)"):
        run(toy, tmp_path / "p.parquet", tmp_path / "out", cold_start="skip", chunk_rows=20, explainer=bt.LinearExplainer(strict=True))


def test_null_ids_are_skipped_even_in_explain_mode(toy, tmp_path):
    pd.DataFrame({"user": [1.0, None, 2.0], "item": [1, 2, 3]}).to_parquet(tmp_path / "p.parquet")
    res = run(toy, tmp_path / "p.parquet", tmp_path / "out", cold_start="explain")
    assert res.counts["skipped"] == 1 and res.counts["unknown_user"] == 1 and res.counts["explained"] == 2
    got = read_batch_output(tmp_path / "out")
    assert got["status"].tolist() == ["explained", "skipped", "explained"]


def test_out_dir_of_a_different_job_is_refused(toy, tmp_path):
    bt.write_pairs(tmp_path / "p.parquet", 100, toy[0], seed=1)
    bt.write_pairs(tmp_path / "q.parquet", 100, toy[0], seed=2)
    run(toy, tmp_path / "p.parquet", tmp_path / "out", chunk_rows=30)
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "out").iterdir()}
    with pytest.raises(DataError, match=r"holds the parts of a different explain-batch job \(pairs file \(sha256\)"):
        run(toy, tmp_path / "q.parquet", tmp_path / "out", chunk_rows=30)
    with pytest.raises(DataError, match=r"different explain-batch job \(cold_start: 'skip' there, 'explain' now\)"):
        run(toy, tmp_path / "p.parquet", tmp_path / "out", chunk_rows=30, cold_start="explain")
    with pytest.raises(DataError, match=r"chunk_rows: 30 there, 40 now"):
        run(toy, tmp_path / "p.parquet", tmp_path / "out", chunk_rows=40)
    other_model = bt.LinearToy(weights=(0.0, 1.0, 0.0))
    other_model.fit(toy[0])
    with pytest.raises(DataError, match=r"different explain-batch job \(model fingerprint: '[0-9a-f]{12}' there, '[0-9a-f]{12}' now\)"):
        explain_pairs_batched(other_model, toy[0], bt.LinearExplainer(), tmp_path / "p.parquet", tmp_path / "out",
                              chunk_rows=30, show_progress=False)
    with pytest.raises(DataError, match=r"different explain-batch job \(explainer params delay: None there, 0.5 now\)"):
        run(toy, tmp_path / "p.parquet", tmp_path / "out", chunk_rows=30, explainer=bt.LinearExplainer(delay=0.5),
            explainer_params={"delay": 0.5})
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "out").iterdir()} == before  # untouched


def test_non_empty_foreign_directory_is_refused(toy, tmp_path):
    bt.write_pairs(tmp_path / "p.parquet", 10, toy[0])
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "part-00000.parquet").write_bytes(b"someone else's")
    with pytest.raises(DataError, match=r"directory is not empty \(part-00000.parquet\) and holds no explain-batch job"):
        run(toy, tmp_path / "p.parquet", tmp_path / "out")
    assert (tmp_path / "out" / "part-00000.parquet").read_bytes() == b"someone else's"
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["part-00000.parquet"]  # nothing added


def test_a_second_writer_of_the_same_directory_is_refused(toy, tmp_path):
    bt.write_pairs(tmp_path / "p.parquet", 10, toy[0])
    (tmp_path / "out").mkdir()
    with _DirLock(tmp_path / "out"):
        with pytest.raises(DataError, match="another explain-batch is writing this directory"):
            run(toy, tmp_path / "p.parquet", tmp_path / "out")
    run(toy, tmp_path / "p.parquet", tmp_path / "out")  # the lock is released


def test_ray_executor_without_the_plugin_names_the_plugin():
    host = PluginHost()
    host.add(builtins, "whyrec.builtins")
    host.check()
    assert host.names("executors") == ["local"]
    with pytest.raises(RegistryError, match=r"--executor: unknown executor 'ray'; it is provided by the plugin whyrec-ray: pip install -e plugins/whyrec-ray"):
        host.get("executors", "ray", where="--executor: ")


# -- resuming --------------------------------------------------------------------------------
def test_rerun_of_a_finished_job_reuses_every_part(toy, tmp_path):
    bt.write_pairs(tmp_path / "p.parquet", 100, toy[0])
    run(toy, tmp_path / "p.parquet", tmp_path / "out", chunk_rows=30)
    first = read_batch_output(tmp_path / "out")
    res = run(toy, tmp_path / "p.parquet", tmp_path / "out", chunk_rows=30)
    assert (res.parts_written, res.parts_reused, res.rows_written) == (0, 4, 0)
    pd.testing.assert_frame_equal(read_batch_output(tmp_path / "out"), first, check_exact=True)


def test_missing_corrupt_and_half_written_parts_are_redone(toy, tmp_path):
    bt.write_pairs(tmp_path / "p.parquet", 100, toy[0])
    out = tmp_path / "out"
    run(toy, tmp_path / "p.parquet", out, chunk_rows=30)
    first = read_batch_output(out)
    kept = (out / part_name(0)).stat().st_mtime_ns
    (out / part_name(1)).unlink()
    (out / part_name(2)).write_bytes(b"PAR1 truncated")  # not even a footer
    (out / ".part-00003.parquet.abc.tmp").write_bytes(b"half")  # an interrupted atomic write
    (out / SUCCESS_FILE).unlink()
    with pytest.raises(RunDirError, match="unfinished, rerun it to resume"):
        read_batch_output(out)
    res = run(toy, tmp_path / "p.parquet", out, chunk_rows=30)
    assert (res.parts_written, res.parts_reused) == (2, 2)
    assert (out / part_name(0)).stat().st_mtime_ns == kept
    assert not list(out.glob("*.tmp"))
    pd.testing.assert_frame_equal(read_batch_output(out), first, check_exact=True)


def test_failure_mid_job_keeps_finished_parts_and_resume_completes(toy, tmp_path):
    data, model = toy
    bt.write_pairs(tmp_path / "p.parquet", 100, data)
    ref = run(toy, tmp_path / "p.parquet", tmp_path / "ref", chunk_rows=20)

    class Flaky(bt.LinearExplainer):
        calls = 0

        def explain(self, model, data, pairs):
            Flaky.calls += 1
            if Flaky.calls == 4:  # the probe, then parts 0, 1 succeed; part 2 fails
                raise RuntimeError("worker lost")
            return super().explain(model, data, pairs)

    with pytest.raises(RuntimeError, match="worker lost"):
        explain_pairs_batched(model, data, Flaky(), tmp_path / "p.parquet", tmp_path / "out", chunk_rows=20,
                              show_progress=False, explainer_name="LinearExplainer")
    assert sorted(p.name for p in (tmp_path / "out").glob("part-*")) == [part_name(0), part_name(1)]
    assert not (tmp_path / "out" / SUCCESS_FILE).exists()
    res = run(toy, tmp_path / "p.parquet", tmp_path / "out", chunk_rows=20)
    assert (res.parts_written, res.parts_reused) == (3, 2)
    pd.testing.assert_frame_equal(read_batch_output(tmp_path / "out"), read_batch_output(ref.out_dir), check_exact=True)


KILL_SCRIPT = """
import sys
sys.path.insert(0, {here!r})
import batch_toy as bt
from whyrec.batch import explain_pairs_batched
data, model = bt.fitted()
explain_pairs_batched(model, data, bt.LinearExplainer(delay={delay}), {pairs!r}, {out!r}, chunk_rows=25,
                      show_progress=False, explainer_name="LinearExplainer")
"""


def test_sigkill_at_any_point_then_rerun_gives_every_row_exactly_once(toy, tmp_path):
    df = bt.write_pairs(tmp_path / "p.parquet", 250, toy[0])
    ref = run(toy, tmp_path / "p.parquet", tmp_path / "ref", chunk_rows=25)
    out = tmp_path / "out"
    script = tmp_path / "job.py"
    script.write_text(KILL_SCRIPT.format(here=str(HERE), delay=0.3, pairs=str(tmp_path / "p.parquet"), out=str(out)))
    proc = subprocess.Popen([sys.executable, str(script)], stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while len(list(out.glob("part-*.parquet"))) < 3 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()
    done = {p.name: p.stat().st_mtime_ns for p in out.glob("part-*.parquet")}
    assert 3 <= len(done) < 10 and not (out / SUCCESS_FILE).exists()

    res = run(toy, tmp_path / "p.parquet", out, chunk_rows=25)  # the lock died with the process
    assert res.parts_reused == len(done) and res.parts_written == 10 - len(done)
    assert {n: (out / n).stat().st_mtime_ns for n in done} == done  # finished parts were not redone
    got = read_batch_output(out)
    assert got["row"].tolist() == list(range(250))
    assert got[["user", "item", "request_id"]].equals(df)
    pd.testing.assert_frame_equal(got, read_batch_output(ref.out_dir), check_exact=True)


# -- memory and progress ---------------------------------------------------------------------
MEM_SCRIPT = """
import pathlib, resource, sys
sys.path.insert(0, {here!r})
import batch_toy as bt
from whyrec.batch import explain_pairs_batched
data, model = bt.fitted()
if sys.argv[1] == "write":
    bt.write_pairs(pathlib.Path({pairs!r}), {n}, data, row_group_size=10_000)
    sys.exit(0)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
explain_pairs_batched(model, data, bt.LinearExplainer(), {pairs!r}, {out!r}, chunk_rows=5_000, show_progress=False)
print(base, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak_kib(tmp_path: Path, n: int) -> int:
    """Peak RSS growth (KiB) of a fresh process explaining n pairs (written by another process)."""
    script = tmp_path / f"mem{n}.py"
    script.write_text(MEM_SCRIPT.format(here=str(HERE), n=n, pairs=str(tmp_path / f"p{n}.parquet"), out=str(tmp_path / f"o{n}")))
    for mode in ("write", "run"):
        proc = subprocess.run([sys.executable, str(script), mode], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
    base, peak = map(int, proc.stdout.split())
    return peak - base


def test_peak_memory_does_not_grow_with_the_input(tmp_path):
    small = peak_kib(tmp_path, 20_000)
    large = peak_kib(tmp_path, 400_000)  # 20x the rows: 12 output columns x 8 bytes x 400k = 38 MB if held at once
    assert large - small < 12 * 1024, (small, large)


def test_progress_bar_shows_rows_per_second(toy, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WHYREC_PROGRESS", "1")
    bt.write_pairs(tmp_path / "p.parquet", 100, toy[0])
    # a slow explainer, so the bar (refreshed at most every 0.1 s) draws each chunk
    run(toy, tmp_path / "p.parquet", tmp_path / "out", chunk_rows=30, show_progress=True, explainer=bt.LinearExplainer(delay=0.15))
    err = capsys.readouterr().err
    assert "explain-batch:" in err and "90.0/100" in err
    assert re.search(r"[0-9.]+k?rows/s\]", err)  # a measured rate, not the initial "?rows/s"


def test_chunk_explainer_is_a_plain_picklable_callable(toy):
    """What a cluster executor ships to workers: it must survive serialisation."""
    import pickle  # noqa: S403  (our own object, round-tripped in memory, as Ray's object store does)

    import pyarrow as pa

    data, model = toy
    layout = {"explainer": "x", "features": ["age", "quality", "price"], "fields": ["user", "item"], "chunk_rows": 4}
    fn = ChunkExplainer(model, data, bt.LinearExplainer(), "skip", layout)
    table = pa.table({"user": [1, 2], "item": [3, 4]})
    i, a = fn((1, table))
    _, b = pickle.loads(pickle.dumps(fn))((1, table))
    assert i == 1 and a.equals(b) and a.column("row").to_pylist() == [4, 5]
