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
from dataclasses import dataclass

import promql_parser as pp

NAMESPACE = "namespace"


@dataclass(frozen=True)
class Refused:
    """Why a query is not sent."""

    reason: str


# Children of each node kind that hold expressions (`Call.args` is a list). A pass over the
# attributes reads the tree once: pp.walk and pp.transform hand every node's whole subtree to
# Python again, cubic in its depth (100 selectors in `a+b+...` took 1.6 s, a 4 KiB override
# of 1,365 would hold the event loop for most of an hour).
_CHILDREN = ("lhs", "rhs", "expr", "param", "vector_selector")


def _selectors(expr: pp.Expr) -> list[pp.VectorSelector]:
    """Every vector selector of `expr`, those inside ranges and subqueries too: the tree's
    own objects (setting their `matchers` rewrites the tree)."""
    found: list[pp.VectorSelector] = []
    stack = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, pp.VectorSelector):
            found.append(node)
            continue
        if isinstance(node, pp.Call):
            stack.extend(node.args)
        stack.extend(c for c in (getattr(node, n, None) for n in _CHILDREN) if c is not None)
    return found


def _force(node: pp.VectorSelector, namespace: str) -> str | None:
    """Sets `namespace="<ns>"` in place of any namespace matcher of `node`, or says why it
    cannot be confined."""
    if node.matchers.or_matchers:
        return "`or` inside a selector is not supported in tenant queries"
    kept = [m for m in node.matchers.matchers if m.name != NAMESPACE]
    node.matchers = pp.Matchers([*kept, pp.Matcher(pp.MatchOp.Equal, NAMESPACE, namespace)])
    return None


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
    for selector in _selectors(tree):
        refused = _force(selector, namespace)
        if refused:
            return Refused(refused)
    try:  # printing recurses: a query nested ~500 deep runs out of stack
        rewritten = str(tree)
    except RecursionError:
        return Refused("query nested too deeply to be confined to its namespace")
    # the library prints label values unescaped: what will be sent is parsed and checked again
    try:
        again = pp.parse(rewritten)
    except Exception:
        return Refused("query cannot be confined to its namespace (a label value with quotes?)")
    if not _scoped_everywhere(again, namespace):
        return Refused("query cannot be confined to its namespace (a label value with quotes?)")
    return rewritten
