"""schemathesis' own command line, with `ast.parse` made safe to call from its worker threads.

Python 3.11 keeps the AST builder's recursion depth in state that all threads share (CPython
gh-106905): two threads building a tree at once can fail with `SystemError: AST constructor
recursion depth mismatch`. Hypothesis parses the source of lambdas to describe its strategies,
and schemathesis draws on two threads (`--workers 2`), so now and then a run of the fuzzing gate
ended in a "Runtime Error" of the fuzzer itself, not of the server. One lock around `ast.parse`
keeps the two workers and takes the race away.
"""

from __future__ import annotations

import ast
import sys
import threading
from typing import Any

_parse = ast.parse
_one_at_a_time = threading.Lock()


def _parse_alone(*args: Any, **kwargs: Any) -> Any:
    with _one_at_a_time:
        return _parse(*args, **kwargs)


ast.parse = _parse_alone  # type: ignore[assignment]

from schemathesis.cli import schemathesis  # noqa: E402 (after the patch, which its imports must see)

if __name__ == "__main__":
    sys.exit(schemathesis())
