"""PDF and PNG from ONE Typst template (`dashboard.typ`): no browser, no system libraries.

Each app has its own `Typesetter` (held by its `Services`): its compiler is built on first use
(it loads the fonts once) and reused; a lock serialises it because one compiler instance holds
mutable state between compilations.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import typst

from tenantry.text import scrub

TEMPLATE = Path(__file__).with_name("dashboard.typ")
PNG_PPI = 110.0
CONTENT_TYPES = {"pdf": "application/pdf", "png": "image/png"}


class Typesetter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._compiler: Any = None

    def typeset(
        self,
        fmt: str,
        *,
        title: str,
        subtitle: str,
        klips: Sequence[tuple[str, str] | tuple[str, str, int, int]],
        timestamp: datetime | None = None,
    ) -> bytes:
        """Typeset a dashboard; `klips` are (title, svg) pairs in order (a Setup watermark is
        already drawn over each SVG, see `charts.svg.watermarked`).

        Every text is scrubbed first: Typst's JSON and SVG readers refuse lone surrogates and most
        control characters, which older names and drawings may still hold."""
        data = {
            "title": scrub(title),
            "subtitle": scrub(subtitle),
            "format": fmt,
            "klips": [{"title": scrub(t), "svg": scrub(s)} for t, s in klips],
        }
        with self._lock:
            if self._compiler is None:
                self._compiler = typst.Compiler(str(TEMPLATE))
            output = self._compiler.compile(
                format=fmt,
                ppi=PNG_PPI if fmt == "png" else None,
                sys_inputs={"data": json.dumps(data)},
                # Typst takes whole seconds only.
                timestamp=timestamp.replace(microsecond=0) if timestamp is not None else None,
            )
        if isinstance(output, list):  # several pages as PNG: the template keeps PNG to one page
            output = output[0]
        assert isinstance(output, bytes)
        return output
