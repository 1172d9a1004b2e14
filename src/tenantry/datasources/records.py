"""What a url source's `records` expression may do (SPEC §14: it selects the rows in a JSON
answer; SPEC §12: no input blows up memory).

JMESPath can build as well as select: a function call (`to_string`, `join`, `merge`, …) or a
multi-select list (`[a, b]`) makes new values, and piped one into the next, a 400-character
expression over a 6-byte answer grows past any memory. So only the selecting parts are allowed,
and the multi-select hash that reshapes a record (`{id: id, n: meta.n}`), checked on the parsed
expression: when the source is saved (the schema refuses the rest with a 422 naming `records`)
and again before a fetch, for an expression stored earlier. What an allowed expression costs still
grows with the answer, so `search_records` counts its steps (every value it visits, every element
a flatten makes) and stops it past a bound.
"""

from __future__ import annotations

from typing import Any

import jmespath
import jmespath.exceptions
import jmespath.visitor

# The parts that select: names, indexes, slices, projections, flattening, filters and what a
# filter tests with, `@`, pipes, and literals (see `_literal`).
_SELECTING = frozenset(
    {
        "field",
        "subexpression",
        "index",
        "index_expression",
        "slice",
        "projection",
        "value_projection",
        "flatten",
        "filter_projection",
        "comparator",
        "and_expression",
        "or_expression",
        "not_expression",
        "literal",
        "current",
        "identity",
        "pipe",
        # A multi-select hash reshapes each record (`items[].{id: id, n: meta.n}`): each of its
        # values is one step of `search_records`, and what a flatten makes of them is counted too.
        "multi_select_dict",
        "key_val_pair",
    }
)

# The parts that build, named as the refusal names them.
_BUILDING = {
    "function_expression": "a function call",
    "expref": "an expression reference (&expr)",
    "multi_select_list": "a multi-select list ([a, b])",
}

# The interpreter recurses once or more per level; a deep expression would exhaust the stack.
MAX_DEPTH = 30

_REFUSED = "The records expression may only select records: {part} is not allowed."


def check_records(expression: str) -> str | None:
    """None when `expression` is valid JMESPath made only of selecting parts; otherwise the
    sentence that says why it is refused (naming the first function it calls, if any)."""
    try:
        parsed = jmespath.compile(expression).parsed
    except jmespath.exceptions.JMESPathError:
        return "The records expression is not valid JMESPath."
    except RecursionError:
        return f"The records expression is nested too deeply (at most {MAX_DEPTH} levels)."
    refusals: list[str] = []
    # (node, depth, its parent's type): walked without recursion.
    pending: list[tuple[Any, int, str | None]] = [(parsed, 1, None)]
    while pending:
        node, depth, parent = pending.pop()
        if not isinstance(node, dict):
            continue  # a slice's bounds: plain numbers or None
        if depth > MAX_DEPTH:
            return f"The records expression is nested too deeply (at most {MAX_DEPTH} levels)."
        kind = node.get("type")
        if kind == "function_expression":
            return _REFUSED.format(part=f"the function call {node.get('value')}()")
        if kind in _BUILDING:
            refusals.append(_REFUSED.format(part=_BUILDING[kind]))
        elif kind not in _SELECTING:
            refusals.append(_REFUSED.format(part=f"the part {kind!r}"))
        elif kind == "literal" and not _literal(node.get("value"), parent):
            refusals.append(
                "The records expression may only select records: a list or object literal is "
                "allowed only as one side of a comparison."
            )
        pending.extend((child, depth + 1, kind) for child in reversed(node.get("children") or []))
    return refusals[0] if refusals else None


def _literal(value: Any, parent: str | None) -> bool:
    """A plain literal may stand anywhere (a projection repeats a reference to it, one per
    element); a list or object only where it is compared with, never where it becomes a value
    that a flatten or projection could multiply."""
    return parent == "comparator" or value is None or isinstance(value, str | int | float | bool)


# What `search_records` may spend: one step is one part of the expression applied to one value
# (about half a microsecond each), so about two seconds at most (50,000 rows at 40 steps each).
MAX_STEPS = 2_000_000


class RecordsTooCostly(Exception):
    """The expression took more steps than `search_records` allows; str() is the sentence."""


class _Counting(jmespath.visitor.TreeInterpreter):
    def __init__(self, max_steps: int) -> None:
        super().__init__()
        self._left = max_steps

    def _spend(self, steps: int) -> None:
        self._left -= steps
        if self._left < 0:
            raise RecordsTooCostly("The records expression takes too long over this answer.")

    def visit(self, node: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        self._spend(1)
        return super().visit(node, *args, **kwargs)

    def visit_flatten(self, node: dict[str, Any], value: Any) -> Any:
        # A flatten makes its list in one step of the interpreter: each element it holds counts,
        # or `{a: @, b: @}.*[]` piped into itself would double a list at every stage for free.
        merged = super().visit_flatten(node, value)
        if isinstance(merged, list):
            self._spend(len(merged))
        return merged


def search_records(expression: str, document: Any, max_steps: int = MAX_STEPS) -> Any:
    """`jmespath.search`, stopped with RecordsTooCostly after `max_steps` steps: an allowed
    expression builds little, but its time grows with the answer times the expression (a filter
    of 60 characters over 2.5 million elements runs for a minute). Raises JMESPathError for an
    invalid expression, like jmespath.search."""
    return _Counting(max_steps).visit(jmespath.compile(expression).parsed, document)
