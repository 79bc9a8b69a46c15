"""The causal roles are checked by `whyrec validate`, before any data is read or model trained."""
from __future__ import annotations

import pytest

from whyrec.plugins import get_host
from whyrec.registry import load_registry

PIPE = """[pipelines.p]
dataset = {{ use = "sim-ecommerce", n_rows = 2000 }}
model = {{ use = "lightgbm" }}
causal = {{ use = "causalnex-bn", {roles} }}
"""


@pytest.mark.parametrize("roles,expected", [
    ('exogenous = ["label"]', "pipelines.p.causal: `exogenous` lists the outcome 'label'"),
    ('outcome = "purchase", actionable = ["purchase"]', "`actionable` lists the outcome 'purchase'"),
    ('required_edges = [["price", "rating"], ["rating", "price"]]', "`required_edges` form a cycle (price -> rating -> price)"),
    ('required_edges = [["price", "discount"]], forbidden_edges = [["price", "discount"]]', "'price' -> 'discount'"),
])
def test_contradicting_roles_are_validate_errors(tmp_path, roles, expected):
    p = tmp_path / "r.toml"
    p.write_text(PIPE.format(roles=roles))
    problems = load_registry(p).problems(get_host())
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{p}: pipelines.p.causal: ") and expected in problems[0]


def test_consistent_roles_validate(tmp_path):
    p = tmp_path / "r.toml"
    p.write_text(PIPE.format(roles='actionable = ["price", "discount"], exogenous = ["income"], '
                                   'required_edges = [["discount", "label"]]'))
    assert load_registry(p).problems(get_host()) == []
