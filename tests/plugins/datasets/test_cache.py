"""The data cache: pip download, sha256 check, data-only extraction, damage detection."""
from __future__ import annotations

import json
import zipfile

import pytest

from whyrec.errors import DataError
from whyrec_datasets import cache
from whyrec_datasets.movielens import MovieLens100K


def test_extract_takes_only_data_files_and_writes_a_manifest(wheelhouse, tmp_path):
    out = cache.extract(cache.SOURCES["ml-100k"], wheelhouse / "recbole-1.2.1-py3-none-any.whl", root=tmp_path)
    files = sorted(p.name for p in out.iterdir())
    assert files == ["manifest.json", "ml-100k.inter", "ml-100k.item", "ml-100k.user"]
    man = json.loads((out / "manifest.json").read_text())
    assert man["wheel_sha256"] == "9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407"
    assert man["files"]["ml-100k.inter"]["sha256"] == cache.sha256_file(out / "ml-100k.inter")
    assert cache.problems("ml-100k", root=tmp_path) == []

    obd = cache.extract(cache.SOURCES["obd"], wheelhouse / "obp-0.4.1-py3-none-any.whl", root=tmp_path)
    csvs = sorted(str(p.relative_to(obd)) for p in obd.rglob("*") if p.is_file() and p.name != "manifest.json")
    assert len(csvs) == 12 and all(c.endswith(".csv") for c in csvs)
    assert "random/men/men.csv" in csvs and "bts/all/item_context.csv" in csvs


def test_fetch_downloads_with_pip_and_verifies(tmp_path, monkeypatch):
    monkeypatch.delenv("WHYREC_WHEELHOUSE", raising=False)
    path = cache.fetch("ml-100k", root=tmp_path)
    assert (path / "ml-100k.user").read_text().startswith("user_id:token\tage:token")
    assert cache.status(root=tmp_path)[0]["ok"] is True


def test_tampered_wheel_is_refused(tmp_path, monkeypatch):
    fake = tmp_path / "house" / "recbole-1.2.1-py3-none-any.whl"
    fake.parent.mkdir()
    with zipfile.ZipFile(fake, "w") as zf:
        zf.writestr("recbole/dataset_example/ml-100k/ml-100k.inter", "user_id:token\n1\n")
    monkeypatch.setenv("WHYREC_WHEELHOUSE", str(fake.parent))
    with pytest.raises(DataError, match="does not match the pinned"):
        cache.fetch("ml-100k", root=tmp_path / "c")
    assert not (tmp_path / "c" / "ml-100k").exists()


def test_truncated_cache_is_detected_and_re_extracted(private_cache, wheelhouse, monkeypatch, capsys):
    inter = private_cache / "ml-100k" / "ml-100k.inter"
    inter.write_bytes(inter.read_bytes()[:1000])
    assert "truncated" in cache.problems("ml-100k")[0]
    monkeypatch.setenv("WHYREC_WHEELHOUSE", str(wheelhouse))
    data = MovieLens100K().load()
    assert len(data.interactions) == 100_000
    assert "is damaged in the cache" in capsys.readouterr().err
    assert cache.problems("ml-100k") == []


def test_corrupted_cache_without_registry_is_a_clear_error(private_cache, monkeypatch):
    item = private_cache / "ml-100k" / "ml-100k.item"
    raw = bytearray(item.read_bytes())
    raw[100] ^= 0xFF  # same size, different content
    item.write_bytes(bytes(raw))
    monkeypatch.delenv("WHYREC_WHEELHOUSE", raising=False)
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # pip cannot reach any registry
    with pytest.raises(DataError, match=r"damaged in the cache \(.*ml-100k.item does not match its sha256.*whyrec datasets fetch"):
        MovieLens100K().load()


def test_missing_cache_fetches_automatically(tmp_path, wheelhouse, monkeypatch, capsys):
    monkeypatch.setenv("WHYREC_CACHE", str(tmp_path / "empty"))
    monkeypatch.setenv("WHYREC_WHEELHOUSE", str(wheelhouse))
    data = MovieLens100K(negatives=0).load()
    assert len(data.users) == 943
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not in the cache; fetching recbole==1.2.1" in err[0]
