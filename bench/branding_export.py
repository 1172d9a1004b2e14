"""Branding's cost on exports: a 12-klip dashboard as PDF and PNG, for the same partner with a
brand (logo, name, colours) and without one, in one run, alternating rounds so both see the same
machine. The app is served by uvicorn in a process of its own (bench/_dashboards.py).

    .venv/bin/python bench/branding_export.py [--quick]

Prints the medians per format and, on the LAST line, unbranded/branded time ratios (goal >= 0.9:
a branded export costs at most about a tenth more).
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import httpx
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _dashboards import Served, median, serve

BRAND = {
    "product_name": "Acme Insights",
    "primary_color": "#aa3300",
    "accent_color": "#00aa88",
    "email_from_name": "Acme Reports",
    "support_email": "help@acme.test",
    "footer_text": "Acme Ltd",
}
PLAIN = {
    "product_name": "Tenantry",
    "primary_color": "#1f4e79",
    "accent_color": None,
    "email_from_name": None,
    "support_email": None,
    "footer_text": None,
}


def logo() -> bytes:
    out = io.BytesIO()
    image = Image.new("RGB", (600, 200), (170, 51, 0))
    image.paste((255, 255, 255), (40, 40, 560, 160))
    image.save(out, format="PNG")
    return out.getvalue()


def branded(http: httpx.Client, on: bool) -> None:
    http.patch("/api/1/partner/branding", json=BRAND if on else PLAIN).raise_for_status()
    if on:
        http.put(
            "/api/1/partner/branding/logo", content=logo(), headers={"Content-Type": "image/png"}
        ).raise_for_status()
    else:
        http.delete("/api/1/partner/branding/logo").raise_for_status()


def measure(quick: bool) -> dict[str, float]:
    """Print the medians per format; answer the unbranded/branded ratio per format."""
    rounds, per_round = (3, 3) if quick else (6, 5)

    served: Served = serve()
    samples: dict[tuple[str, bool], list[float]] = {(f, b): [] for f in ("pdf", "png") for b in (False, True)}
    try:
        with httpx.Client(base_url=served.base, headers=served.headers, timeout=120) as http:

            def export(fmt: str) -> float:
                start = time.perf_counter()
                response = http.get(f"/api/1/dashboards/{served.dashboard_id}/export", params={"format": fmt})
                response.raise_for_status()
                return time.perf_counter() - start

            for fmt in ("pdf", "png"):  # fonts, the compiler and every drawing, once
                export(fmt)
            for _ in range(rounds):
                for on in (False, True):
                    branded(http, on)
                    for fmt in ("pdf", "png"):
                        export(fmt)  # the brand read once (its cache), as a running server has
                        samples[(fmt, on)] += [export(fmt) for _ in range(per_round)]
    finally:
        served.stop()

    ratios = {}
    for fmt in ("pdf", "png"):
        plain, brand = median(samples[(fmt, False)]), median(samples[(fmt, True)])
        ratios[fmt] = plain / brand
        runs = len(samples[(fmt, True)])
        print(f"{fmt}: unbranded median {plain * 1000:7.1f} ms, branded {brand * 1000:7.1f} ms ({runs} runs)")
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs")
    ratios = measure(parser.parse_args().quick)
    print("unbranded/branded: " + " ".join(f"{fmt}={r:.2f}" for fmt, r in ratios.items()) + " (goal: >= 0.9)")


if __name__ == "__main__":
    main()
