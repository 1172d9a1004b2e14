"""Export speed: a dashboard of 12 klips over 1,000-row sources as PDF and PNG, typeset by Typst,
against the same dashboard's HTML page printed by a persistent headless Chromium (Playwright
`page.pdf()` / `page.screenshot()` with the system /usr/bin/chromium), in the same run.

cold: every data source was just refreshed (new data versions: every klip is drawn again);
warm: every klip is cached. Both sides go through the same HTTP server.

    .venv/bin/python bench/export.py [--quick]

Prints the medians, the chart-drawing cost against pygal, and on the LAST line the
Chromium/ours ratios (goal: >= 5 warm, >= 1.5 cold).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _dashboards import KINDS, Served, median, rows, serve

from tenantry.charts.svg import render

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def timed(action: Callable[[], object], before: Callable[[], object] | None, runs: int) -> float:
    samples = []
    for _ in range(runs):
        if before is not None:
            before()
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return median(samples)


def chart_costs(runs: int) -> tuple[int, float, float]:
    """The chart klips of the dashboard (bar, line, pie) drawn from 1,000 rows each, by our renderer
    (grouping and thinning included) and by pygal (js=[]) given the already-reduced series."""
    import pygal

    charts = []
    for i in range(12):
        kind, columns = KINDS[i % len(KINDS)]
        if kind in ("bar", "line", "pie"):
            charts.append((kind, columns, rows(1000, i)))

    def ours() -> None:
        for kind, columns, source in charts:
            render(kind, "Klip", source, columns)

    def theirs() -> None:
        for kind, columns, source in charts:
            if kind == "line":
                step = max(1, len(source) // 400)
                chart = pygal.Line(js=[], show_dots=False)
                chart.x_labels = [str(r[columns["x"]]) for r in source[::step]]
                chart.add(columns["y"], [r[columns["y"]] for r in source[::step]])
            else:
                key, value = (
                    (columns["x"], columns["y"]) if kind == "bar" else (columns["label"], columns["value"])
                )
                totals: dict[str, float] = {}
                for r in source:
                    totals[r[key]] = totals.get(r[key], 0) + r[value]
                chart = pygal.Bar(js=[]) if kind == "bar" else pygal.Pie(js=[])
                if kind == "bar":
                    chart.x_labels = list(totals)
                    chart.add(value, list(totals.values()))
                else:
                    for name, amount in totals.items():
                        chart.add(name, amount)
            chart.render()

    return len(charts), timed(ours, None, runs), timed(theirs, None, runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs")
    args = parser.parse_args()
    runs = 5 if args.quick else 15

    from playwright.sync_api import sync_playwright

    served: Served = serve()
    try:
        with httpx.Client(base_url=served.base, headers=served.headers, timeout=120) as http:
            link = http.post(
                f"/api/1/dashboards/{served.dashboard_id}/published-links", json={"name": "bench"}
            ).json()
            page_url = link["url"]

            def ours(fmt: str) -> Callable[[], object]:
                def run() -> None:
                    response = http.get(
                        f"/api/1/dashboards/{served.dashboard_id}/export", params={"format": fmt}
                    )
                    response.raise_for_status()

                return run

            ours(fmt="pdf")()  # load fonts and the Typst compiler once, as a running server has
            results: dict[str, float] = {}
            for fmt in ("pdf", "png"):
                results[f"ours {fmt} cold"] = timed(ours(fmt), served.refresh_all, runs)
                results[f"ours {fmt} warm"] = timed(ours(fmt), None, runs)

            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.goto(page_url)

                def chromium(fmt: str) -> Callable[[], object]:
                    def run() -> None:
                        page.goto(page_url, wait_until="load")
                        if fmt == "pdf":
                            page.pdf(format="A4", landscape=True, print_background=True)
                        else:
                            page.screenshot(full_page=True)

                    return run

                for fmt in ("pdf", "png"):
                    results[f"chromium {fmt} cold"] = timed(chromium(fmt), served.refresh_all, runs)
                    results[f"chromium {fmt} warm"] = timed(chromium(fmt), None, runs)
                browser.close()
    finally:
        served.stop()

    chart_count, ours_charts, pygal_charts = chart_costs(runs)
    for name, seconds in results.items():
        print(f"{name:22s} median {seconds * 1000:8.1f} ms  ({runs} runs)")
    print(
        f"charts: {chart_count} chart klips x 1,000 rows drawn in {ours_charts * 1000:.1f} ms by ours, "
        f"{pygal_charts * 1000:.1f} ms by pygal"
    )
    ratios = {
        f"{fmt}_{temp}": results[f"chromium {fmt} {temp}"] / results[f"ours {fmt} {temp}"]
        for temp in ("warm", "cold")
        for fmt in ("pdf", "png")
    }
    print(
        "chromium/ours: "
        + " ".join(f"{name}={ratio:.1f}x" for name, ratio in ratios.items())
        + " (goal: warm >= 5, cold >= 1.5)"
    )


if __name__ == "__main__":
    main()
