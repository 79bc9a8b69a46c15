"""Domain constraints from registry parameters, checked before any learning starts."""
from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Any

from whyrec.errors import DataError

if TYPE_CHECKING:  # structure imports numpy/pandas: `whyrec validate` checks roles without them
    from .structure import Constraints


def _name(name: Any, variables: list[str], key: str) -> str:
    if not isinstance(name, str):
        raise DataError(f"`{key}`: expected variable names (strings), got {name!r}")
    if name not in variables:
        close = difflib.get_close_matches(name, variables, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise DataError(f"`{key}` names {name!r}, which is not a causal variable{hint}; the variables are "
                        f"{', '.join(variables)}")
    return name


def _edges(value: Any, variables: list[str], key: str) -> list[tuple[str, str]]:
    out = []
    for e in value or []:
        if not isinstance(e, (list, tuple)) or len(e) != 2:
            raise DataError(f"`{key}`: each edge is a pair [\"cause\", \"effect\"], got {e!r}")
        s, t = _name(e[0], variables, key), _name(e[1], variables, key)
        if s == t:
            raise DataError(f"`{key}`: edge {s!r} -> {t!r} is a self-loop; a variable cannot cause itself")
        if (s, t) not in out:
            out.append((s, t))
    return out


# Which schema fields a feature's causes may come from ("recommender field rules"): an item's
# attributes exist before any user sees it and do not depend on the user (and vice versa); the
# user's history is the user's own past; cross features are computed from user, item, context
# and history; the outcome may have any cause. User features get no parents at all by default
# through ``exogenous_fields = ["user"]``.
FIELD_RULES: dict[str, list[str]] = {
    "user": ["user"],
    "item": ["item"],
    "context": ["context"],
    "history": ["user", "history"],
    "cross": ["user", "item", "context", "history", "cross"],
}


def field_forbidden_edges(variables: list[str], fields: dict[str, str], target: str) -> list[tuple[str, str]]:
    out = []
    for t in variables:
        allowed = FIELD_RULES.get(fields.get(t, ""))
        if t == target or allowed is None:
            continue
        for s in variables:
            if s != t and s != target and fields.get(s) not in allowed:
                out.append((s, t))
    return out


def build_constraints(
    variables: list[str],
    target: str,
    fields: dict[str, str],
    *,
    exogenous_fields: list[str] | None,
    outcome_is_sink: bool,
    tabu_parents: list[str] | None,
    tabu_children: list[str] | None,
    forbidden_edges: list[list[str]] | None,
    required_edges: list[list[str]] | None,
    field_rules: bool = True,
    exogenous: list[str] | None = None,
) -> Constraints:
    """Defaults (nothing causes the features of ``exogenous_fields``, the outcome causes nothing,
    and with ``field_rules`` the FIELD_RULES between schema fields) plus the user's lists;
    DataError for unknown names, a forbidden edge that is also required, required edges that
    form a cycle or contradict a tabu list or the field rules."""
    import networkx as nx

    parents = [target] if outcome_is_sink else []
    parents += [_name(n, variables, "tabu_parents") for n in tabu_parents or []]
    exo = set(exogenous_fields or [])
    children = [v for v in variables if fields.get(v) in exo and v != target]
    children += [_name(n, variables, "tabu_children") for n in tabu_children or []]
    children += [_name(n, variables, "exogenous") for n in exogenous or []]
    forbidden = _edges(forbidden_edges, variables, "forbidden_edges")
    required = _edges(required_edges, variables, "required_edges")
    both = [e for e in required if e in forbidden]
    if both:
        s, t = both[0]
        raise DataError(f"edge {s!r} -> {t!r} is both required (`required_edges`) and forbidden (`forbidden_edges`); "
                        f"remove it from one of the two lists")
    g = nx.DiGraph(required)
    try:
        cycle = nx.find_cycle(g)
    except nx.NetworkXNoCycle:
        cycle = None
    if cycle:
        path = " -> ".join([u for u, _ in cycle] + [cycle[0][0]])
        raise DataError(f"`required_edges` form a cycle ({path}); a causal graph must be acyclic: drop one of these edges")
    for s, t in required:
        if s in parents:
            why = "the outcome causes nothing (outcome_is_sink = true)" if s == target and outcome_is_sink else "it is in `tabu_parents`"
            raise DataError(f"required edge {s!r} -> {t!r} contradicts the constraints: {s!r} may cause nothing because {why}")
        if t in children:
            why = (f"its field {fields.get(t)!r} is exogenous (exogenous_fields = {sorted(exo)})"
                   if fields.get(t) in exo else "it is in `exogenous`" if t in (exogenous or []) else "it is in `tabu_children`")
            raise DataError(f"required edge {s!r} -> {t!r} contradicts the constraints: nothing may cause {t!r} because {why}")
    by_fields = field_forbidden_edges(variables, fields, target) if field_rules else []
    banned = set(by_fields)
    for s, t in required:
        if (s, t) in banned:
            raise DataError(
                f"required edge {s!r} -> {t!r} contradicts the field rules: a {fields.get(t)!r} feature may only be caused "
                f"by {FIELD_RULES[fields.get(t)]} features and {s!r} is a {fields.get(s)!r} feature; set "
                f"`field_rules = false` to lift them")
    from .structure import Constraints

    dedup = lambda xs: list(dict.fromkeys(xs))  # noqa: E731
    used_fields = {fields.get(v) for v in variables}
    rules = {f: a for f, a in FIELD_RULES.items() if f in used_fields} if field_rules else None
    return Constraints(tabu_parents=dedup(parents), tabu_children=dedup(children), forbidden=forbidden, required=required,
                       field_forbidden=by_fields, field_rules=rules)


def _pairs(value: Any, key: str) -> list[tuple[str, str]]:
    out = []
    if value is None:
        return out
    if not isinstance(value, (list, tuple)):
        raise DataError(f"`{key}`: expected a list of [\"cause\", \"effect\"] pairs, got {value!r}")
    for e in value:
        if not isinstance(e, (list, tuple)) or len(e) != 2 or not all(isinstance(x, str) for x in e):
            raise DataError(f"`{key}`: each edge is a pair [\"cause\", \"effect\"] of variable names, got {e!r}")
        if e[0] == e[1]:
            raise DataError(f"`{key}`: edge {e[0]!r} -> {e[1]!r} is a self-loop; a variable cannot cause itself")
        out.append((e[0], e[1]))
    return out


def _names(value: Any, key: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, (list, tuple)) or not all(isinstance(x, str) for x in value):
        raise DataError(f"`{key}`: expected a list of variable names, e.g. {key} = [\"price\"], got {value!r}")
    return list(value)


def check_roles(
    *,
    outcome: str,
    actionable: list[str] | None,
    exogenous: list[str] | None,
    forbidden_edges: Any,
    required_edges: Any,
    tabu_parents: list[str] | None,
    tabu_children: list[str] | None,
    outcome_is_sink: bool,
    variables: list[str] | None,
    exclude: list[str] | None,
    interventions: list[str] | None,
) -> None:
    """The causal roles checked against each other before any data is read (the learner's
    constructor calls it, so ``whyrec run`` stops before training anything). One-line
    DataError naming the keys: the outcome declared exogenous or actionable, a variable both
    actionable/exogenous and excluded, malformed edges, a required edge that is also forbidden,
    required edges that form a cycle, or one that leaves the outcome or enters an exogenous
    variable. Names are checked against the data later (``build_constraints``)."""
    act = _names(actionable, "actionable")
    exo = _names(exogenous, "exogenous")
    excl = _names(exclude, "exclude")
    var_list = _names(variables, "variables")
    forbidden = _pairs(forbidden_edges, "forbidden_edges")
    required = _pairs(required_edges, "required_edges")
    if outcome in exo:
        raise DataError(f"`exogenous` lists the outcome {outcome!r}: exogenous variables are caused by nothing, while "
                        f"the outcome is what the other variables cause; remove {outcome!r} from `exogenous`")
    if outcome in act:
        raise DataError(f"`actionable` lists the outcome {outcome!r}: actionable variables are the levers whose effect on "
                        f"the outcome is estimated; remove {outcome!r} from `actionable`")
    if outcome in _names(interventions, "interventions"):
        raise DataError(f"`interventions` lists the outcome {outcome!r}; intervene on its causes instead")
    for key, names in (("actionable", act), ("exogenous", exo), ("interventions", _names(interventions, "interventions"))):
        gone = [n for n in names if n in excl]
        if gone:
            raise DataError(f"{gone[0]!r} is both in `{key}` and in `exclude`; remove it from one of the two")
        if var_list:
            absent = [n for n in names if n not in var_list and n != outcome]
            if absent:
                close = difflib.get_close_matches(absent[0], var_list, n=1, cutoff=0.6)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise DataError(f"`{key}` names {absent[0]!r}, which is not in `variables`{hint}; add it to `variables` "
                                f"or remove it from `{key}`")
    both = [e for e in required if e in forbidden]
    if both:
        s, t = both[0]
        raise DataError(f"edge {s!r} -> {t!r} is both required (`required_edges`) and forbidden (`forbidden_edges`); "
                        f"remove it from one of the two lists")
    import networkx as nx

    try:
        cycle = nx.find_cycle(nx.DiGraph(required))
    except nx.NetworkXNoCycle:
        cycle = None
    if cycle:
        path = " -> ".join([u for u, _ in cycle] + [cycle[0][0]])
        raise DataError(f"`required_edges` form a cycle ({path}); a causal graph must be acyclic: drop one of these edges")
    sinks = set(_names(tabu_parents, "tabu_parents"))
    sources = set(_names(tabu_children, "tabu_children"))
    for s, t in required:
        if s == outcome and outcome_is_sink:
            raise DataError(f"required edge {s!r} -> {t!r} contradicts the constraints: {s!r} may cause nothing because "
                            f"the outcome causes nothing (outcome_is_sink = true)")
        if s in sinks:
            raise DataError(f"required edge {s!r} -> {t!r} contradicts the constraints: {s!r} may cause nothing because "
                            f"it is in `tabu_parents`")
        if t in exo or t in sources:
            key = "exogenous" if t in exo else "tabu_children"
            raise DataError(f"required edge {s!r} -> {t!r} contradicts the constraints: nothing may cause {t!r} because "
                            f"it is in `{key}`")
