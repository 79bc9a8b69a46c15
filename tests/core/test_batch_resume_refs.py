"""explain-batch resume logic against hand-made directory states: a stale _SUCCESS, parts that
are out of place, of another job, stale or short, leftovers of interrupted writes, and the
manifest's counts worked out from the input."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import batch_toy as bt  # noqa: E402

from whyrec.batch import (  # noqa: E402
    JOB_FILE, LOCK_FILE, META_KEY, SUCCESS_FILE, explain_pairs_batched, file_sha256, part_name, read_batch_output,
)
from whyrec.errors import DataError, RunDirError  # noqa: E402


@pytest.fixture(scope="module")
def toy():
    return bt.fitted()


def run(toy, pairs, out, explainer=None, **kw):
    data, model = toy
    kw.setdefault("show_progress", False)
    kw.setdefault("explainer_name", "LinearExplainer")
    return explain_pairs_batched(model, data, explainer or bt.LinearExplainer(), pairs, out, **kw)


class FailOn(bt.LinearExplainer):
    """Fails on the n-th call (the first call is the layout probe)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n, self.calls = n, 0

    def explain(self, model, data, pairs):
        self.calls += 1
        if self.calls == self.n:
            raise RuntimeError("worker lost")
        return super().explain(model, data, pairs)


def rewrite_meta(path: Path, **changes) -> None:
    """Rewrite a part with its batch metadata changed (as a stale or foreign part would be)."""
    table = pq.read_table(path)
    meta = json.loads(table.schema.metadata[META_KEY])
    meta.update(changes)
    pq.write_table(table.replace_schema_metadata({**table.schema.metadata, META_KEY: json.dumps(meta).encode()}), path)


@pytest.fixture
def done(toy, tmp_path):
    """A finished job: 100 rows in parts of 30 (30, 30, 30, 10)."""
    bt.write_pairs(tmp_path / "p.parquet", 100, toy[0])
    run(toy, tmp_path / "p.parquet", tmp_path / "out", chunk_rows=30)
    return tmp_path / "p.parquet", tmp_path / "out", read_batch_output(tmp_path / "out")


def test_redoing_a_part_takes_the_stale_success_away_first(toy, done):
    pairs, out, _ = done
    (out / part_name(1)).unlink()
    with pytest.raises(RuntimeError, match="worker lost"):
        run(toy, pairs, out, explainer=FailOn(2), chunk_rows=30)  # the probe, then the redo of part 1 fails
    assert not (out / SUCCESS_FILE).exists()
    with pytest.raises(RunDirError, match="unfinished"):
        read_batch_output(out)


def test_a_resumed_job_rewrites_success_for_the_new_parts(toy, done):
    pairs, out, first = done
    old = json.loads((out / SUCCESS_FILE).read_text())
    (out / part_name(3)).unlink()
    res = run(toy, pairs, out, chunk_rows=30)
    assert (res.parts_written, res.parts_reused, res.rows_written) == (1, 3, 10)
    new = json.loads((out / SUCCESS_FILE).read_text())
    assert new["last_run"]["parts_written"] == 1 and new["last_run"]["parts_reused"] == 3
    assert new["last_run"]["rows_written"] == 10 and old["last_run"]["parts_written"] == 4
    assert [p["sha256"] for p in new["parts"]] == [file_sha256(out / part_name(i)) for i in range(4)]
    pd.testing.assert_frame_equal(read_batch_output(out), first, check_exact=True)


def test_a_part_renamed_out_of_place_is_redone(toy, done):
    pairs, out, first = done
    (out / part_name(2)).unlink()
    (out / part_name(1)).rename(out / part_name(2))  # part 1's rows under part 2's name
    res = run(toy, pairs, out, chunk_rows=30)
    assert (res.parts_written, res.parts_reused) == (2, 2)
    pd.testing.assert_frame_equal(read_batch_output(out), first, check_exact=True)


def test_a_part_beyond_the_last_is_removed(toy, done):
    pairs, out, first = done
    (out / part_name(7)).write_bytes((out / part_name(0)).read_bytes())
    res = run(toy, pairs, out, chunk_rows=30)
    assert (res.parts_written, res.parts_reused) == (0, 4)
    assert not (out / part_name(7)).exists()
    pd.testing.assert_frame_equal(read_batch_output(out), first, check_exact=True)


def test_a_part_of_another_job_is_refused_and_kept(toy, done):
    pairs, out, _ = done
    rewrite_meta(out / part_name(2), job="0" * 64)
    with pytest.raises(DataError, match=r"part-00002.parquet: part of a different explain-batch job; refusing to mix"):
        run(toy, pairs, out, chunk_rows=30)
    assert (out / part_name(2)).exists()


def test_a_part_without_a_job_id_is_checked_like_the_rest(toy, done):
    pairs, out, first = done
    rewrite_meta(out / part_name(2), job=None)
    res = run(toy, pairs, out, chunk_rows=30)
    assert (res.parts_written, res.parts_reused) == (0, 4)


def test_a_stale_part_whose_input_hash_differs_is_redone(toy, done):
    pairs, out, first = done
    rewrite_meta(out / part_name(1), input_sha256="f" * 64)
    res = run(toy, pairs, out, chunk_rows=30)
    assert (res.parts_written, res.parts_reused) == (1, 3)
    pd.testing.assert_frame_equal(read_batch_output(out), first, check_exact=True)


def test_a_part_whose_row_count_disagrees_is_redone(toy, done):
    pairs, out, first = done
    table = pq.read_table(out / part_name(0))
    pq.write_table(table.slice(0, 29), out / part_name(0))  # one row short, metadata says 30
    res = run(toy, pairs, out, chunk_rows=30)
    assert (res.parts_written, res.parts_reused) == (1, 3)
    rewrite_meta(out / part_name(3), rows=11)  # metadata claims more rows than the file holds
    res = run(toy, pairs, out, chunk_rows=30)
    assert (res.parts_written, res.parts_reused) == (1, 3)
    pd.testing.assert_frame_equal(read_batch_output(out), first, check_exact=True)


def test_a_part_with_unreadable_metadata_is_redone(toy, done):
    pairs, out, first = done
    table = pq.read_table(out / part_name(2))
    pq.write_table(table.replace_schema_metadata({}), out / part_name(2))  # no batch metadata
    res = run(toy, pairs, out, chunk_rows=30)
    assert (res.parts_written, res.parts_reused) == (1, 3)
    pd.testing.assert_frame_equal(read_batch_output(out), first, check_exact=True)


def test_leftovers_of_interrupted_writes_are_removed(toy, done):
    pairs, out, _ = done
    (out / ".part-00001.parquet.x1.tmp").write_bytes(b"half")
    (out / f".{SUCCESS_FILE}.x2.tmp").write_bytes(b"half")
    (out / "notes.txt").write_text("mine")  # not a leftover: kept
    res = run(toy, pairs, out, chunk_rows=30)
    assert res.parts_reused == 4
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [JOB_FILE, LOCK_FILE, SUCCESS_FILE, "notes.txt", *(part_name(i) for i in range(4))])


def test_moving_the_pairs_file_keeps_the_job(toy, done, tmp_path):
    pairs, out, _ = done
    moved = tmp_path / "elsewhere.parquet"
    moved.write_bytes(pairs.read_bytes())
    res = run(toy, moved, out, chunk_rows=30)  # same content: the same job, resumed
    assert (res.parts_written, res.parts_reused) == (0, 4)


def test_a_new_job_that_fails_gives_up_its_claim_but_keeps_the_lock_file(toy, tmp_path):
    bt.write_pairs(tmp_path / "p.parquet", 50, toy[0])
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(RuntimeError, match="worker lost"):
        run(toy, tmp_path / "p.parquet", out, explainer=FailOn(2), chunk_rows=30)
    assert sorted(p.name for p in out.iterdir()) == [LOCK_FILE]
    run(toy, tmp_path / "p.parquet", out, chunk_rows=25)  # other options: not refused as another job


def test_a_new_job_failing_after_a_part_keeps_the_job_file(toy, tmp_path):
    bt.write_pairs(tmp_path / "p.parquet", 50, toy[0])
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="worker lost"):
        run(toy, tmp_path / "p.parquet", out, explainer=FailOn(3), chunk_rows=30)
    assert sorted(p.name for p in out.iterdir()) == sorted([JOB_FILE, LOCK_FILE, part_name(0)])
    res = run(toy, tmp_path / "p.parquet", out, chunk_rows=30)
    assert (res.parts_written, res.parts_reused) == (1, 1)
    with pytest.raises(RuntimeError, match="worker lost"):  # a resumed job that fails keeps its claim
        (out / part_name(1)).unlink()
        run(toy, tmp_path / "p.parquet", out, explainer=FailOn(2), chunk_rows=30)
    assert (out / JOB_FILE).exists()


def test_unreadable_job_file_and_listing_of_a_foreign_directory(toy, tmp_path):
    bt.write_pairs(tmp_path / "p.parquet", 10, toy[0])
    out = tmp_path / "out"
    out.mkdir()
    (out / JOB_FILE).write_text("{not json")
    with pytest.raises(DataError, match=r"_job.json: unreadable .*not an explain-batch output directory"):
        run(toy, tmp_path / "p.parquet", out)
    (out / JOB_FILE).unlink()
    for name in "abcdefg":
        (out / name).write_text("x")
    with pytest.raises(DataError, match=r"directory is not empty \(a, b, c, d, e, \.\.\.\) and holds no explain-batch job \(_job.json\)"):
        run(toy, tmp_path / "p.parquet", out)
    for name in "fg":
        (out / name).unlink()
    with pytest.raises(DataError, match=r"directory is not empty \(a, b, c, d, e\) and"):
        run(toy, tmp_path / "p.parquet", out)
    assert sorted(p.name for p in out.iterdir()) == list("abcde")


def test_only_the_lock_file_does_not_make_a_directory_foreign(toy, tmp_path):
    bt.write_pairs(tmp_path / "p.parquet", 10, toy[0])
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / LOCK_FILE).write_text("")
    assert run(toy, tmp_path / "p.parquet", tmp_path / "out").parts_written == 1


def test_manifest_counts_parts_and_rows_from_the_input(toy, tmp_path):
    df = bt.write_pairs(tmp_path / "p.parquet", 45, toy[0], unknown_users=3, unknown_items=4)
    df.loc[40, "item"] = 20_999  # one more unknown item, in the last part
    df.to_parquet(tmp_path / "p.parquet", index=False)
    res = run(toy, tmp_path / "p.parquet", tmp_path / "out", chunk_rows=20, cold_start="explain")
    m = json.loads((tmp_path / "out" / SUCCESS_FILE).read_text())
    assert m["counts"] == {"explained": 37, "cold_start": 8, "skipped": 0, "unknown_user": 3, "unknown_item": 5}
    assert res.counts == m["counts"]
    assert [(p["file"], p["first_row"], p["rows"]) for p in m["parts"]] == [
        (part_name(0), 0, 20), (part_name(1), 20, 20), (part_name(2), 40, 5)]
    assert m["rows_in"] == m["rows_out"] == 45 and m["chunk_rows"] == 20 and m["cold_start"] == "explain"
    assert m["pairs_sha256"] == file_sha256(tmp_path / "p.parquet") and m["format"] == 1
    job = json.loads((tmp_path / "out" / JOB_FILE).read_text())
    assert m["job"] == job["fingerprint"] and m["columns"] == job["columns"] and m["pairs"] == job["pairs"]
    assert m["model"] == job["model"] and m["explainer"] == job["explainer"] and m["method"] == job["method"]
    assert [p["input_sha256"] for p in m["parts"]] == [
        json.loads(pq.read_metadata(tmp_path / "out" / part_name(i)).metadata[META_KEY])["input_sha256"] for i in range(3)]
    lr = m["last_run"]
    assert lr["parts_written"] == 3 and lr["parts_reused"] == 0 and lr["rows_written"] == 45
    assert lr["seconds"] >= 0 and lr["rows_per_s"] > 0
    metas = [json.loads(pq.read_metadata(tmp_path / "out" / part_name(i)).metadata[META_KEY]) for i in range(3)]
    assert [x["counts"]["unknown_user"] for x in metas] == [3, 0, 0]
    assert [x["counts"]["unknown_item"] for x in metas] == [4, 0, 1]
    assert [(x["part"], x["first_row"], x["rows"]) for x in metas] == [(0, 0, 20), (1, 20, 20), (2, 40, 5)]


def test_skipped_rows_are_counted_in_the_manifest(toy, tmp_path):
    bt.write_pairs(tmp_path / "p.parquet", 30, toy[0], unknown_users=2)
    res = run(toy, tmp_path / "p.parquet", tmp_path / "out", chunk_rows=20)
    assert res.counts == {"explained": 28, "cold_start": 0, "skipped": 2, "unknown_user": 2, "unknown_item": 0}


def test_explainer_params_in_another_order_are_the_same_job(toy, tmp_path):
    bt.write_pairs(tmp_path / "p.parquet", 40, toy[0])
    run(toy, tmp_path / "p.parquet", tmp_path / "out", chunk_rows=20, explainer_params={"a": 1, "b": 2})
    res = run(toy, tmp_path / "p.parquet", tmp_path / "out", chunk_rows=20, explainer_params={"b": 2, "a": 1})
    assert (res.parts_written, res.parts_reused) == (0, 2)


def test_a_different_job_lists_every_difference(toy, done):
    pairs, out, _ = done
    with pytest.raises(DataError, match=r"different explain-batch job \(chunk_rows: 30 there, 40 now; "
                                        r"cold_start: 'skip' there, 'explain' now\); refusing to mix"):
        run(toy, pairs, out, chunk_rows=40, cold_start="explain")


def test_a_part_of_another_job_message_is_exact(toy, done):
    pairs, out, _ = done
    rewrite_meta(out / part_name(0), job="0" * 64)
    with pytest.raises(DataError, match=r"^\S+part-00000.parquet: part of a different explain-batch job; refusing to mix, "
                                        r"choose a new --out directory$"):
        run(toy, pairs, out, chunk_rows=30)


def test_last_run_timing_figures(toy, tmp_path):
    bt.write_pairs(tmp_path / "p.parquet", 60, toy[0])
    run(toy, tmp_path / "p.parquet", tmp_path / "out", chunk_rows=20)
    lr = json.loads((tmp_path / "out" / SUCCESS_FILE).read_text())["last_run"]
    assert abs(lr["seconds"] * 1e3 - round(lr["seconds"] * 1e3)) < 1e-6  # milliseconds
    assert abs(lr["rows_per_s"] * 10 - round(lr["rows_per_s"] * 10)) < 1e-6  # one decimal
    assert lr["rows_per_s"] == pytest.approx(60 / lr["seconds"], rel=0.05, abs=1.0)
