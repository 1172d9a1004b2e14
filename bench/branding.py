"""Pages on a partner's own domain against the same pages on the default address, in one run:
the published page and the sign-in page, each requested with `Host: <verified domain>` and with
the server's own address, in interleaved slices.

    .venv/bin/python bench/branding.py [--quick]

On the domain every request also passes the host middleware (a lookup in the process's table of
verified domains) and the page checks the link's partner against the host's. The LAST line gives
the ratios domain/default (goal >= 0.9 for both), then those of an export with a logo against one
without (bench/branding_export.py, goal >= 0.9).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parent))

import branding_export
from _dashboards import serve

from tenantry.domains.service import verify_domain

CONCURRENCY = 4
SLICES = 6
DOMAIN = "dashboards.agency.test"


def throughput(base: str, path: str, seconds: float, host: str | None) -> tuple[float, int]:
    """Requests per second from CONCURRENCY keep-alive clients hammering one path for `seconds`."""
    counts = [0] * CONCURRENCY
    errors = [0] * CONCURRENCY
    stop = time.perf_counter() + seconds
    headers = {"Host": host} if host else {}

    def worker(index: int) -> None:
        with httpx.Client(base_url=base, timeout=30, headers=headers) as http:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs")
    args = parser.parse_args()
    seconds = 3.0 if args.quick else 15.0  # per page and side
    found: dict[str, Any] = {}

    def prepare(http: TestClient, _client_id: int, dashboard_id: int) -> None:
        link = http.post(f"/api/1/dashboards/{dashboard_id}/published-links", json={"name": "bench"})
        http.post("/api/1/partner/domains", json={"hostname": DOMAIN}).raise_for_status()
        with http.app.state.services.database.session(write=True) as db:  # type: ignore[attr-defined]
            verify_domain(db, http.app.state.services.clock, DOMAIN)  # type: ignore[attr-defined]
            db.commit()
        url = link.json()["url"]
        found["path"] = url[url.index("/published/") :]

    served = serve(prepare=prepare)
    try:
        published = str(found["path"])
        # The domain serves the partner: its link answers there, and another host's 404 proves it.
        assert httpx.get(served.base + published, headers={"Host": DOMAIN}).status_code == 200
        assert httpx.get(served.base + "/internal/tls-ask", params={"domain": DOMAIN}).status_code == 200
        for path in (published, "/login"):  # warm: the page drawn, the table of domains read
            throughput(served.base, path, 0.5, DOMAIN)
        rates: dict[tuple[str, str], list[float]] = {}
        failures = 0
        for _ in range(SLICES):
            for name, path in (("published", published), ("sign-in", "/login")):
                for side, host in (("default", None), ("domain", DOMAIN)):
                    rate, errors = throughput(served.base, path, seconds / SLICES, host)
                    rates.setdefault((name, side), []).append(rate)
                    failures += errors
    finally:
        served.stop()
    mean = {key: sum(values) / len(values) for key, values in rates.items()}
    print(f"{CONCURRENCY} keep-alive clients, {seconds:g} s per page and side, {SLICES} interleaved slices")
    for name in ("published", "sign-in"):
        print(
            f"{name:10} default: {mean[(name, 'default')]:7.0f} req/s   "
            f"on {DOMAIN}: {mean[(name, 'domain')]:7.0f} req/s"
        )
    published_ratio = mean[("published", "domain")] / mean[("published", "default")]
    signin_ratio = mean[("sign-in", "domain")] / mean[("sign-in", "default")]
    print(f"{failures} non-200 answers")
    exports = branding_export.measure(args.quick)
    print(
        f"domain/default: published {published_ratio:.2f}, sign-in {signin_ratio:.2f}; "
        f"unbranded/branded export: pdf {exports['pdf']:.2f}, png {exports['png']:.2f} (goal >= 0.9 each)"
    )


if __name__ == "__main__":
    main()
