"""decide/runbook.py, the table docs/reference/runbook-mapping.md is written from, says what the
code does: each check's limits are the ones assess reads, each rule's actions and runbook
sections are those its source can return, and decide() asks the steps in the table's order,
each returning only what its row says (over test_decide's scenarios)."""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.unit.builders import SPEC, observe
from tests.unit.test_decide import NOW, RULES, assessed
from venue_operator.assess import checks
from venue_operator.assess.assessment import assess
from venue_operator.decide import decision, procedure, rules
from venue_operator.decide.decision import Action, Decision
from venue_operator.decide.runbook import CHECK_ROWS, PROCEDURE, Step
from venue_operator.model import reasons
from venue_operator.model.spec import Thresholds

CHECK_SECTIONS = {section for section, _ in checks.CHECKS.values()}
SECTIONS = {name: value for module in (reasons, decision) for name, value in vars(module).items()
            if name.isupper() and isinstance(value, str)
            and (name.endswith("_SECTION") or value in CHECK_SECTIONS)}  # fmt: skip
RULE_STEPS = [step for step in PROCEDURE if step.is_rule]


def test_a_row_per_check_in_the_order_status_shows_them() -> None:
    assert [row.name for row in CHECK_ROWS] == list(checks.CHECKS)


def test_each_checks_limits_are_the_spec_field_its_row_names() -> None:
    assessment = assess(observe(), SPEC)
    for row in CHECK_ROWS:
        found = assessment.check(row.name)
        if row.threshold is None:
            assert (found.warning, found.critical) == (None, None), row.name
            assert row.reads and row.levels, row.name
            continue
        limits = getattr(SPEC.thresholds, row.threshold)
        assert (found.warning, found.critical, found.unit or "") == (
            limits.warning, limits.critical, row.unit), row.name  # fmt: skip
    used = [row.threshold for row in CHECK_ROWS if row.threshold]
    assert sorted(used) == sorted(Thresholds.model_fields), "each threshold is one check's"


def _returns(function: Callable[..., object]) -> tuple[set[Action], set[str]]:
    """The actions and runbook sections a function's source can return: `Action.X`, a call of
    guardrails.escalate (an escalation), and the section constants it names."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    actions, sections = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and node.value.id == "Action":  # fmt: skip
            actions.add(Action[node.attr])
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id == "escalate":  # fmt: skip
            actions.add(Action.ESCALATE)
        elif isinstance(node, ast.Name) and node.id in SECTIONS:
            sections.add(SECTIONS[node.id])
    return actions, sections


@pytest.mark.parametrize("step", RULE_STEPS, ids=[s.name for s in RULE_STEPS])
def test_each_rules_actions_and_sections_are_those_of_its_source(step: Step) -> None:
    assert _returns(step.step) == (set(step.actions), set(step.sections))


def test_every_rule_is_a_step_and_every_step_is_called_by_decide() -> None:
    deciding = {name for name, f in inspect.getmembers(rules, inspect.isfunction)
                if f.__module__ == rules.__name__
                and "Decision" in str(inspect.signature(f).return_annotation)}  # fmt: skip
    assert {s.name for s in RULE_STEPS} == deciding
    calls = [node.func for node in ast.walk(ast.parse(inspect.getsource(procedure)))
             if isinstance(node, ast.Call)]  # fmt: skip
    called = {f.attr if isinstance(f, ast.Attribute) else f.id
              for f in calls if isinstance(f, ast.Attribute | ast.Name)}  # fmt: skip
    assert {s.name for s in PROCEDURE} <= called


def _patches() -> Iterator[tuple[object, str, Step]]:
    """Where decide() finds each step: rules through its module, the others imported by name."""
    for step in PROCEDURE:
        yield (rules if step.is_rule else procedure), step.name, step


def test_decide_asks_the_steps_in_the_tables_order_and_each_returns_its_rows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[int, Step, Any]] = []
    for number, (module, name, step) in enumerate(_patches()):
        original = getattr(module, name)

        def recording(*args: Any, _f: Any = original, _n: int = number, _s: Step = step,
                      **kwargs: Any) -> Any:  # fmt: skip
            result = _f(*args, **kwargs)
            calls.append((_n, _s, result))
            return result

        monkeypatch.setattr(module, name, recording)
    seen: set[str] = set()
    for case, obs, rollout, status, pol, _, _ in RULES:
        calls.clear()
        procedure.decide(assessed(**obs), rollout, status, pol, NOW)
        order = [n for n, _, _ in calls]
        assert order == sorted(order), f"{case}: {[s.name for _, s, _ in calls]}"
        for _, step, result in calls:
            seen.add(step.name)
            if step.is_rule and isinstance(result, Decision) and result.action is not None:
                assert result.action in step.actions, f"{case}: {step.name} {result.action}"
                assert result.section in step.sections, f"{case}: {step.name} {result.section}"
    assert seen == {s.name for s in PROCEDURE}, "a step no scenario reached"
