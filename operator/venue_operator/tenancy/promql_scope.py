"""Tenant PromQL forced to one namespace: every vector and range selector of a query gets
`namespace="<ns>"` (set, or overriding the tenant's own namespace matcher) before the query
is sent, so a namespace user's override cannot read another namespace's series.

`namespace` is a target label (service discovery sets it), and a scrape keeps target labels
over the series' own (`honor_labels: false`): an exporter in the tenant's namespace that
labels a series `namespace="other"` (kube-state-metrics, a federated Prometheus) has it
stored as `exported_namespace="other"`, and as `exported_exported_namespace` when the series
already carried an `exported_namespace` (federating a Prometheus that renamed it once). So
`max(shared_info{exported_namespace="other"})` read another namespace's value with the
namespace forced. The rule for the `exported_*namespace` labels:

- pinned: every selector also gets `exported_namespace=~"|<ns>"` (and the same for
  `exported_exported_namespace` and one level further). A regex matcher is anchored and an
  empty value matches a series without the label, so the usual series (no such label) and
  those an exporter labels with the tenant's own namespace still match; a series another
  namespace's name was moved into never does. A fourth level takes an exposed series that
  already carries three: no exporter writes that unless made to, and then it tells the
  tenant only what its own exporter knows.
- refused: a matcher of the tenant's on any `(exported_)+namespace` label but `="<ns>"` or
  `=""`: it asks for another namespace's series, and the reason says so.

The rewrite works on the syntax tree (`promql-parser`, the Rust parser of GreptimeDB), not
on text. Its printer does not escape quotes inside label values, so the rewritten query is
parsed again and every selector of what will really be sent is checked: anything else is
refused with a reason, never sent.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import promql_parser as pp

NAMESPACE = "namespace"
# the labels Prometheus moves a clashing `namespace` into, pinned on every selector
EXPORTED = tuple("exported_" * depth + NAMESPACE for depth in (1, 2, 3))
_EXPORTED_NAME = re.compile(r"(?:exported_)+namespace")
_DNS_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
MAX_SENT = 16 * 1024  # a confined query travels in a GET URL: ~130 characters per selector


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


# MatchOp is not hashable: pairs, not a dict
OPERATORS = ((pp.MatchOp.Equal, "="), (pp.MatchOp.NotEqual, "!="), (pp.MatchOp.Re, "=~"),
             (pp.MatchOp.NotRe, "!~"))  # fmt: skip


def _operator(op: pp.MatchOp) -> str:
    return next(text for known, text in OPERATORS if op == known)


def _quoted(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _pin(namespace: str) -> str:
    """The anchored regex matching no value (the label absent) or `namespace` exactly (a
    namespace is a DNS label: no regex character; `scope` checks)."""
    return f"|{namespace}"


def exported_refusal(label: str, value: str, namespace: str, op: str = "=") -> str | None:
    """Why a matcher of the tenant's asks for another namespace's series under a label
    Prometheus moves `namespace` into, or None (`="<ns>"` and `=""` are kept)."""
    if not _EXPORTED_NAME.fullmatch(label) or (op == "=" and value in (namespace, "")):
        return None
    return (
        f"{label}{op}{_quoted(value[:63])} refused: it selects series an exporter "
        f'labelled with another namespace; only {_quoted(namespace)} or "" may be matched'
    )


def _force(node: pp.VectorSelector, namespace: str) -> str | None:
    """Sets `namespace="<ns>"` in place of any namespace matcher of `node` and pins the
    `EXPORTED` labels, or says why it cannot be confined."""
    if node.matchers.or_matchers:
        return "`or` inside a selector is not supported in tenant queries"
    kept = [m for m in node.matchers.matchers if m.name != NAMESPACE]
    for m in kept:
        refused = exported_refusal(m.name, m.value, namespace, _operator(m.op))
        if refused:
            return refused
    pins = [pp.Matcher(pp.MatchOp.Re, label, _pin(namespace)) for label in EXPORTED]
    own = pp.Matcher(pp.MatchOp.Equal, NAMESPACE, namespace)
    node.matchers = pp.Matchers([*kept, own, *pins])
    return None


def _scoped_everywhere(expr: pp.Expr, namespace: str) -> bool:
    """Every selector carries exactly one namespace matcher, `namespace="<ns>"`, the pins of
    `EXPORTED`, and no other `exported_*namespace` matcher but `="<ns>"` or `=""`."""
    pin = _pin(namespace)
    for selector in _selectors(expr):
        if selector.matchers.or_matchers:
            return False
        matchers = selector.matchers.matchers
        ns = [m for m in matchers if m.name == NAMESPACE]
        if len(ns) != 1 or ns[0].op != pp.MatchOp.Equal or ns[0].value != namespace:
            return False
        pinned = {m.name for m in matchers if m.op == pp.MatchOp.Re and m.value == pin}
        if not pinned.issuperset(EXPORTED):
            return False
        others = [m for m in matchers if _EXPORTED_NAME.fullmatch(m.name) and m.value != pin]
        if any(exported_refusal(m.name, m.value, namespace, _operator(m.op)) for m in others):
            return False
    return True


@functools.lru_cache(maxsize=1024)  # at most ~8 MiB: queries are <= 4 KiB (model/spec.py)
def scope(query: str, namespace: str) -> str | Refused:
    """`query` with every selector forced to `namespace`, or why it is refused (cached: the
    same override is scoped every cycle)."""
    if not _DNS_LABEL.fullmatch(namespace):
        return Refused(f"namespace {_quoted(namespace[:63])} is not a DNS label")
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
    if len(rewritten) > MAX_SENT:
        return Refused(f"query too long once confined to its namespace: {len(rewritten)} "
                       f"characters, at most {MAX_SENT}")  # fmt: skip
    return rewritten


def scope_pair(first: str, second: str, namespace: str) -> tuple[str, str] | Refused:
    """Two queries asked together (requests and their latency buckets), both scoped, or
    the first refusal."""
    one, two = scope(first, namespace), scope(second, namespace)
    if isinstance(one, Refused):
        return one
    if isinstance(two, Refused):
        return two
    return one, two
