"""The partner console's clients list stays as fast as the API with 100,000 clients.

Builds a partner with N clients in every status (bulk inserts, as bench/scale.py does), serves the
real app with uvicorn on loopback, and measures the median time to first byte of
`/partner/clients` (signed in: the first page, a status-filtered page, a search) and of the same
query through `GET /api/1/clients?limit=50` in the same run. Prints each page/API ratio (goal ≤ 2);
figures on the last line.

    .venv/bin/python bench/console.py [--quick] [--clients N] [--repeat 100]
"""

from __future__ import annotations

import argparse
import re
import socket
import sys
import threading
import time

import httpx
import uvicorn
from scale import NOW, populate
from support import median_seconds, sqlite_database

from tenantry.app import create_app
from tenantry.clock import FakeClock
from tenantry.settings import Settings

QUERIES = {
    "first page": "",
    "filtered": "status=trial",
    "search": "q=Client 4242",
}


def first_byte(http: httpx.Client, path: str, headers: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    with http.stream("GET", path, headers=headers) as response:
        chunks = response.iter_raw()
        next(chunks, b"")
        elapsed = time.perf_counter() - started
        assert response.status_code == 200, response.status_code
        for _ in chunks:  # the rest of the body, so the connection is reused
            pass
    return elapsed


def serve(app: object) -> tuple[uvicorn.Server, str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))  # type: ignore[arg-type]
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    return server, f"http://127.0.0.1:{port}"


def sign_in(http: httpx.Client) -> None:
    page = http.get("/login").text
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None
    form = {"email": "scale@bench.test", "password": "bench-password", "csrf_token": found.group(1)}
    assert http.post("/login", data=form).status_code == 303


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 clients, fewer repeats")
    parser.add_argument("--clients", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=None)
    args = parser.parse_args()
    clients = args.clients or (10_000 if args.quick else 100_000)
    repeat = args.repeat or (30 if args.quick else 100)
    with sqlite_database() as database:
        key, _ = populate(database, clients)
        settings = Settings(database_url=database.url, _env_file=None)  # type: ignore[call-arg]
        server, base = serve(create_app(settings, clock=FakeClock(NOW), database=database))
        headers = {"Authorization": f"Bearer {key}"}
        results = []
        try:
            with httpx.Client(base_url=base, timeout=60) as http:
                sign_in(http)
                for name, query in QUERIES.items():
                    page = "/partner/clients" + (f"?{query}" if query else "")
                    api = "/api/1/clients?limit=50" + (f"&{query}" if query else "")
                    page_s = median_seconds(repeat, lambda page=page: first_byte(http, page))
                    api_s = median_seconds(repeat, lambda api=api: first_byte(http, api, headers))
                    print(f"{name}: page {page_s * 1000:.2f} ms, API {api_s * 1000:.2f} ms", file=sys.stderr)
                    results.append(
                        f"{name} {page_s * 1000:.2f}/{api_s * 1000:.2f} ms ratio={page_s / api_s:.2f}"
                    )
        finally:
            server.should_exit = True
    print(f"{clients} clients, /partner/clients vs GET /api/1/clients (median TTFB) | " + " | ".join(results))


if __name__ == "__main__":
    main()
