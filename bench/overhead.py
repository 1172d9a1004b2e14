"""What the product adds to a request: `GET /api/1/clients/{id}` against a bare endpoint.

One uvicorn server (a subprocess on loopback, the app with a partner and a client) gets a bare
endpoint that returns a constant; load processes with keep-alive connections measure the
throughput of both in the same run, in alternating rounds; the ratio is the median of the
rounds' ratios, which evens out the noise of the machine.
Measures SQLite with the database meter (the default set-up; the goal, ratio ≥ 0.5, is for it),
then PostgreSQL with Redis when both are reachable. Prints the ratios; figures on the last line.

    .venv/bin/python bench/overhead.py [--seconds 5] [--rounds 3] [--connections 4]
        [--postgres URL] [--redis URL] [--no-postgres]
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from support import DEFAULT_POSTGRES, postgres_database, postgres_reachable

SERVER = textwrap.dedent(
    """
    import sys, uvicorn
    from tenantry.app import create_app
    from tenantry.settings import Settings

    app = create_app(Settings())

    @app.get("/bench/constant", include_in_schema=False)
    async def constant() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/bench/constant-sync", include_in_schema=False)
    def constant_sync() -> dict[str, str]:
        return {"status": "ok"}

    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
    """
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def hammer(port: int, path: str, headers: dict[str, str], seconds: float, out: multiprocessing.Queue) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port)
    done = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise SystemExit(f"{path} answered {response.status}")
        done += 1
    out.put(done)


def throughput(port: int, path: str, headers: dict[str, str], seconds: float, connections: int) -> float:
    out: multiprocessing.Queue = multiprocessing.Queue()
    workers = [
        multiprocessing.Process(target=hammer, args=(port, path, headers, seconds, out))
        for _ in range(connections)
    ]
    for worker in workers:
        worker.start()
    total = sum(out.get(timeout=seconds + 60) for _ in workers)
    for worker in workers:
        worker.join()
    return total / seconds


DEFAULT_REDIS = "redis://127.0.0.1:6379/14"


def redis_reachable(url: str) -> bool:
    from redis import Redis
    from redis.exceptions import RedisError

    try:
        with Redis.from_url(url, socket_connect_timeout=1) as redis:
            return bool(redis.ping())
    except RedisError:
        return False


@contextmanager
def sqlite_env() -> Iterator[dict[str, str]]:
    with tempfile.TemporaryDirectory() as folder:
        yield {"TENANTRY_DATABASE_URL": f"sqlite:///{folder}/bench.db", "TENANTRY_DATA_DIR": folder}


@contextmanager
def postgres_env(server_url: str, redis_url: str) -> Iterator[dict[str, str]]:
    from redis import Redis

    with postgres_database(server_url) as database, tempfile.TemporaryDirectory() as folder:
        try:
            yield {
                "TENANTRY_DATABASE_URL": database.url,
                "TENANTRY_REDIS_URL": redis_url,
                "TENANTRY_DATA_DIR": folder,
            }
        finally:
            with Redis.from_url(redis_url) as redis:
                redis.flushdb()


def measure(setting: dict[str, str], args: argparse.Namespace) -> dict[str, list[float]]:
    """The throughput of each endpoint in each round, in requests per second."""
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, **setting}
    subprocess.run([bin_dir / "tenantry", "db", "upgrade"], env=env, check=True, capture_output=True)
    created = json.loads(
        subprocess.run(
            [bin_dir / "tenantry", "partner", "create", "Bench", "--admin-email", "b@bench.test"],
            env=env, check=True, capture_output=True, text=True,
        ).stdout
    )  # fmt: skip
    headers = {"Authorization": f"Bearer {created['api_key']}", "Content-Type": "application/json"}
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port)], env=env)
    try:
        for _ in range(200):
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                body = json.dumps({"name": "Bench"})
                connection.request("POST", "/api/1/clients", body=body, headers=headers)
                client_id = json.loads(connection.getresponse().read())["id"]
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise SystemExit("the server did not start")
        paths = {
            "client": f"/api/1/clients/{client_id}",
            "bare": "/bench/constant",
            "bare_sync": "/bench/constant-sync",
        }
        rates: dict[str, list[float]] = {name: [] for name in paths}
        for _ in range(args.rounds):
            for name, path in paths.items():
                rates[name].append(throughput(port, path, headers, args.seconds, args.connections))
    finally:
        server.terminate()
        server.wait(timeout=20)
    for name, values in rates.items():
        print(f"  {name}: " + ", ".join(f"{v:.0f}/s" for v in values), file=sys.stderr)
    return rates


def summary(label: str, rates: dict[str, list[float]]) -> str:
    """Medians over the rounds. The ratios are taken round by round: the three endpoints of a round
    are measured one after the other, so they share the machine's state, which changes between
    rounds by far more than the ratio does."""

    def ratio(baseline: str) -> float:
        return statistics.median(c / b for c, b in zip(rates["client"], rates[baseline], strict=True))

    median = {name: statistics.median(values) for name, values in rates.items()}
    return (
        f"{label}: GET /api/1/clients/{{id}} {median['client']:.0f} req/s, bare async "
        f"{median['bare']:.0f} req/s, bare sync {median['bare_sync']:.0f} req/s; "
        f"ratio={ratio('bare'):.2f} (against the bare sync endpoint {ratio('bare_sync'):.2f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--postgres", metavar="URL", default=DEFAULT_POSTGRES)
    parser.add_argument("--redis", metavar="URL", default=DEFAULT_REDIS)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    print("SQLite, database meter", file=sys.stderr)
    with sqlite_env() as setting:
        lines = [summary("SQLite", measure(setting, args))]
    if args.no_postgres:
        pass
    elif postgres_reachable(args.postgres) and redis_reachable(args.redis):
        print("PostgreSQL, Redis meter", file=sys.stderr)
        with postgres_env(args.postgres, args.redis) as setting:
            lines.append(summary("PostgreSQL+Redis", measure(setting, args)))
    else:
        print(f"PostgreSQL at {args.postgres} or Redis at {args.redis} not reachable", file=sys.stderr)
    print(" | ".join(lines))


if __name__ == "__main__":
    main()
