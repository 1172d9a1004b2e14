"""Throughput of `GET /published/{token}` against a bare endpoint of the same app returning the same
bytes, in one run; then disable the client and show that the very next request answers 403.

    .venv/bin/python bench/published.py [--quick]

The published page does everything a real view does on every request: find the link by the hash
of its token, check the client's status, check the data versions, fetch the klips' SVGs from the
cache and render the page. The LAST line gives the ratio (goal >= 0.5) and the 403.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _dashboards import serve

CONCURRENCY = 4
SLICES = 6


def throughput(base: str, path: str, seconds: float) -> tuple[float, int]:
    """Requests per second from CONCURRENCY keep-alive clients hammering one path for `seconds`."""
    counts = [0] * CONCURRENCY
    errors = [0] * CONCURRENCY
    stop = time.perf_counter() + seconds

    def worker(index: int) -> None:
        with httpx.Client(base_url=base, timeout=30) as http:
            while time.perf_counter() < stop:
                if http.get(path).status_code == 200:
                    counts[index] += 1
                else:
                    errors[index] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(CONCURRENCY)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.perf_counter() - start), sum(errors)


def add_bare(page: dict[str, Any], app: FastAPI) -> None:
    """A bare endpoint serving the published page's bytes: the floor of the comparison."""

    @app.get("/bare", include_in_schema=False)
    def bare() -> HTMLResponse:
        return HTMLResponse(page["bytes"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs")
    args = parser.parse_args()
    seconds = 6.0 if args.quick else 30.0

    page: dict[str, Any] = {"bytes": b"", "url": ""}

    def publish(http: TestClient, _client_id: int, dashboard_id: int) -> None:
        link = http.post(f"/api/1/dashboards/{dashboard_id}/published-links", json={"name": "bench"})
        page["url"] = link.json()["url"]
        page["bytes"] = http.get(page["url"]).content

    # The hook runs in the server process, given `page` as it is when the server starts.
    served = serve(app_hook=partial(add_bare, page), prepare=publish)
    try:
        url = str(page["url"])
        path = url[url.index("/published/") :]
        first = httpx.get(url)
        first.raise_for_status()
        # The same bytes but for the page's nonce (new on every view, of the same length).
        assert len(httpx.get(served.base + "/bare").content) == len(first.content) == len(page["bytes"])
        # Interleaved slices, so a noisy neighbour hurts both sides alike.
        published_rates, bare_rates, failures = [], [], 0
        for _ in range(SLICES):
            rate, errors = throughput(served.base, "/bare", seconds / SLICES)
            bare_rates.append(rate)
            failures += errors
            rate, errors = throughput(served.base, path, seconds / SLICES)
            published_rates.append(rate)
            failures += errors
        published, bare = sum(published_rates) / SLICES, sum(bare_rates) / SLICES
        with httpx.Client(base_url=served.base, headers=served.headers, timeout=60) as http:
            http.patch(f"/api/1/clients/{served.client_id}", json={"status": "disabled"}).raise_for_status()
        after = httpx.get(url)
    finally:
        served.stop()
    print(
        f"page size: {len(page['bytes']):,} bytes; {CONCURRENCY} keep-alive clients, {seconds:g} s per side"
    )
    print(f"bare endpoint:  {bare:8.0f} req/s")
    print(f"published page: {published:8.0f} req/s ({failures} non-200 answers)")
    print(
        f"published/bare = {published / bare:.2f} (goal >= 0.5); "
        f"after disabling the client the next request answered {after.status_code}"
    )


if __name__ == "__main__":
    main()
