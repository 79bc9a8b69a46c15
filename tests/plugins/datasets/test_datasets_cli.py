"""`whyrec datasets` commands, registered through register_commands on a click group."""
from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

import whyrec_datasets
from whyrec.plugins import PluginHost


@pytest.fixture
def cli(monkeypatch):
    host = PluginHost()
    host.add(whyrec_datasets, "whyrec-datasets")
    monkeypatch.setattr("whyrec.plugins.get_host", lambda fresh=False: host)

    @click.group()
    def group() -> None:
        pass

    host.pm.hook.register_commands(cli=group)
    return group


def test_list_is_the_default(cli):
    for args in (["datasets"], ["datasets", "list"]):
        res = CliRunner().invoke(cli, args)
        assert res.exit_code == 0, res.output
        names = [line.split()[0] for line in res.output.strip().splitlines()]
        assert names == ["movielens-100k", "open-bandit", "random-scm", "sim-ecommerce", "sim-finance", "sim-video", "table"]
        assert "Open Bandit Dataset: real clicks" in res.output


def test_describe_a_simulator(cli):
    res = CliRunner().invoke(cli, ["datasets", "describe", "sim-finance", "-p", "n_rows=3000", "-p", "mc_pairs=2000"])
    assert res.exit_code == 0, res.output
    out = res.output
    assert "rows 3,000  users 1,000  items 500" in out
    assert "fields: user, item, history, cross" in out
    assert "actionable: fees" in out
    assert "true DAG: 9 edges" in out and "fees->label" in out
    assert "E[label | do(fees)]  0.1: " in out
    assert "true contributions: yes" in out


def test_describe_movielens(cli):
    res = CliRunner().invoke(cli, ["datasets", "describe", "movielens-100k"])
    assert res.exit_code == 0, res.output
    assert "rows 100,000  users 943  items 1,682  positive rate 0.5537" in res.output
    assert "cross    numeric: genre_match" in res.output
    assert "sequence: hist_0" in res.output


def test_fetch_reports_verified_files(cli, tmp_path, monkeypatch, wheelhouse):
    monkeypatch.setenv("WHYREC_CACHE", str(tmp_path))
    monkeypatch.setenv("WHYREC_WHEELHOUSE", str(wheelhouse))
    res = CliRunner().invoke(cli, ["datasets", "fetch"])
    assert res.exit_code == 0, res.output
    assert f"ml-100k: 3 files verified in {tmp_path}/ml-100k" in res.output
    assert f"obd: 12 files verified in {tmp_path}/obd" in res.output
    again = CliRunner().invoke(cli, ["datasets", "fetch", "--source", "ml-100k"])
    assert "downloading" not in again.output and "3 files verified" in again.output


def test_describe_errors_are_user_errors(cli):
    from whyrec.errors import RegistryError, WhyrecError

    res = CliRunner().invoke(cli, ["datasets", "describe", "movielens"])
    assert isinstance(res.exception, RegistryError)
    assert "did you mean 'movielens-100k'" in str(res.exception)
    res = CliRunner().invoke(cli, ["datasets", "describe", "open-bandit", "-p", "policy=greedy"])
    assert isinstance(res.exception, WhyrecError) and "-p policy: expected one of 'random', 'bts', 'both', got str 'greedy'" in str(res.exception)


def test_describe_checks_parameter_names_and_types(cli):
    from whyrec.errors import RegistryError

    for arg, msg in (("n_rowz=2000", "'sim-finance' has no parameter 'n_rowz'; did you mean 'n_rows'?"),
                     ("n_rows=abc", "-p n_rows: expected int, got str 'abc'"),
                     ("n_rows=2000.5", "-p n_rows: expected int, got float 2000.5")):  # never quietly 2000
        res = CliRunner().invoke(cli, ["datasets", "describe", "sim-finance", "-p", arg])
        assert isinstance(res.exception, RegistryError) and msg in str(res.exception), (arg, res.exception)
