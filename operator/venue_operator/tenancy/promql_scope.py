"""Tenant PromQL forced to one namespace: every vector and range selector of a query gets
`namespace="<ns>"` (set, or overriding the tenant's own namespace matcher) before the query
is sent, so a namespace user's override cannot read another namespace's series.

The rewrite works on the syntax tree (`promql-parser`, the Rust parser of GreptimeDB), not
on text. Its printer does not escape quotes inside label values, so the rewritten query is
parsed again and every selector of what will really be sent is checked: anything else is
refused with a reason, never sent.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import promql_parser as pp

NAMESPACE = "namespace"


@dataclass(frozen=True)
class Refused:
    """Why a query is not sent."""

    reason: str


class _Unscopable(Exception):
    pass


def _selectors(expr: pp.Expr) -> list[pp.VectorSelector]:
    found: list[pp.VectorSelector] = []

    def visit(node: pp.Expr) -> None:
        if isinstance(node, pp.VectorSelector):
            found.append(node)

    pp.walk(expr, pre_visit=visit)
    return found


# MatchOp is not hashable: pairs, not a dict
OPERATORS = ((pp.MatchOp.Equal, "="), (pp.MatchOp.NotEqual, "!="), (pp.MatchOp.Re, "=~"),
             (pp.MatchOp.NotRe, "!~"))  # fmt: skip


def _operator(op: pp.MatchOp) -> str:
    return next(text for known, text in OPERATORS if op == known)


def _quoted(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _forced_text(node: pp.VectorSelector, namespace: str) -> str:
    """The selector with `namespace="<ns>"` in place of any namespace matcher, printed by
    us (the library's printer leaves quotes in values unescaped); its `@`/`offset`
    modifiers follow the last brace of the library's text (they hold no brace)."""
    kept = [m for m in node.matchers.matchers if m.name != NAMESPACE]
    matchers = [f"{m.name}{_operator(m.op)}{_quoted(m.value)}" for m in kept]
    matchers.append(f"{NAMESPACE}={_quoted(namespace)}")
    printed = str(node)
    return f"{node.name or ''}{{{','.join(matchers)}}}{printed[printed.rfind('}') + 1 :]}"


def _forced(namespace: str) -> Callable[[pp.Expr], pp.Expr | None]:
    def visit(node: pp.Expr) -> pp.Expr | None:
        if not isinstance(node, pp.VectorSelector):
            return None
        if node.matchers.or_matchers:
            raise _Unscopable("`or` inside a selector is not supported in tenant queries")
        # pre-visit: a selector inside a range or a subquery is replaced in place
        return pp.parse(_forced_text(node, namespace))

    return visit


def _scoped_everywhere(expr: pp.Expr, namespace: str) -> bool:
    """Every selector carries exactly one namespace matcher, `namespace="<ns>"`."""
    for selector in _selectors(expr):
        if selector.matchers.or_matchers:
            return False
        ns = [m for m in selector.matchers.matchers if m.name == NAMESPACE]
        if len(ns) != 1 or ns[0].op != pp.MatchOp.Equal or ns[0].value != namespace:
            return False
    return True


@functools.lru_cache(maxsize=1024)  # at most ~8 MiB: queries are <= 4 KiB (model/spec.py)
def scope(query: str, namespace: str) -> str | Refused:
    """`query` with every selector forced to `namespace`, or why it is refused (cached: the
    same override is scoped every cycle)."""
    try:
        tree = pp.parse(query)
    except Exception as exc:
        first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        return Refused(f"query cannot be parsed: {first}")
    try:
        rewritten = str(pp.transform(tree, pre_visit=_forced(namespace)))
    except _Unscopable as exc:
        return Refused(str(exc))
    except Exception as exc:
        return Refused(f"query cannot be rewritten: {type(exc).__name__}")
    try:
        again = pp.parse(rewritten)
    except Exception:
        return Refused("query cannot be confined to its namespace (a label value with quotes?)")
    if not _scoped_everywhere(again, namespace):
        return Refused("query cannot be confined to its namespace (a label value with quotes?)")
    return rewritten
