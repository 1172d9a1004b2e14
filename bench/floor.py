"""Tenantry against the physical floor: wrk on a hello-world FastAPI app and on `tenantry serve`.

Both run as their own processes under the same uvicorn settings (`--workers` of each); wrk
(`-t2 -c16` by default) measures, in alternating rounds, the hello-world app and then, on Tenantry:

- `GET /api/1/clients/{id}` with a partner key (a plan without a daily limit: not metered);
- `GET /api/1/me` with a client key (metered: the daily counter and the burst limit);
- a published page, `GET /published/{token}`;
- `PATCH /api/1/clients/{id}` of the client's allocation (a write: the pool check under the
  partner's lock, the history rows), alternating between two values.

On SQLite (the database meter), then on PostgreSQL with Redis when both are reachable. Each ratio is
Tenantry's rate over the floor's, the median over the rounds (each round measures the floor first,
so both see the same machine). `constant` is Tenantry's own app with one constant endpoint added:
what its middleware and routing cost over the floor. Needs wrk (`make bench` installs Debian's).
Figures on the last line.

With `--scaling`, each endpoint (of get, me, published) and the floor are served both by one process
and by `--workers` processes (2 unless more are asked for), side by side on the same database, and
measured in alternating rounds: each ratio is the many processes' rate over the one's, the median
over the rounds. The floor's own ratio is what the machine allows: wrk, the database and Redis run
on the same cores as the servers. Beside each ratio, its ceiling: the machine's cores over the
cores busy while one process served (wrk, PostgreSQL and Redis included), which no spreading of
the work over processes can pass. Above the last line it also shows, for each run, the cores each
part kept busy (the server under test, PostgreSQL, Redis, wrk, the rest) and the CPU each request
cost all of them together: where it grows from one process to many, the machine itself does less
with each core while both work (shared caches, the hypervisor), as the floor's own figures show.

    .venv/bin/python bench/floor.py [--seconds 5] [--rounds 3] [--connections 16] [--threads 2]
        [--workers 1] [--postgres URL] [--redis URL] [--no-postgres] [--only constant,get,me,published,patch]
        [--scaling]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from functools import partial
from pathlib import Path

import httpx
from support import (
    DEFAULT_POSTGRES,
    cores_busy,
    cores_by_role,
    cpu_times,
    descendants,
    postgres_database,
    postgres_reachable,
    process_times,
)

BIN = Path(sys.executable).parent
DEFAULT_REDIS = "redis://127.0.0.1:6379/7"
HELLO = textwrap.dedent(
    """
    from fastapi import FastAPI

    app = FastAPI()


    @app.get("/hello")
    async def hello() -> dict[str, str]:
        return {"status": "ok"}
    """
)
# The hello-world app served exactly as `tenantry serve` serves Tenantry: the same uvicorn options and
# HTTP protocol (`tenantry.wire`), one process or uvicorn's supervisor on Tenantry's own listening
# socket.
RUN_HELLO = textwrap.dedent(
    """
    import sys

    import uvicorn

    from tenantry.wire import SERVER_OPTIONS
    from tenantry.worker.serve import listening_socket, supervise_with_worker

    if __name__ == "__main__":  # the supervisor's processes import this module again
        port, workers = int(sys.argv[1]), int(sys.argv[2])
        options = dict(host="127.0.0.1", port=port, log_level="warning", **SERVER_OPTIONS)
        # On the socket `tenantry serve` makes, with one process as with several.
        sock = listening_socket("127.0.0.1", port)
        if workers > 1:
            supervise_with_worker(uvicorn.Config("hello:app", workers=workers, **options), sock, None)
        else:
            uvicorn.Server(uvicorn.Config("hello:app", **options)).run(sockets=[sock])
    """
)
# Tenantry's own app, with every middleware, plus one constant endpoint: what the middleware and the
# routing cost over the floor (served like `tenantry serve`, without the background worker).
RUN_CONSTANT = textwrap.dedent(
    """
    import sys

    import uvicorn

    from tenantry.app import create_app
    from tenantry.wire import SERVER_OPTIONS
    from tenantry.worker.serve import listening_socket, supervise_with_worker


    def app():
        made = create_app()

        async def constant() -> dict[str, str]:
            return {"status": "ok"}

        made.add_api_route("/bench/constant", constant, include_in_schema=False)
        made.router.routes.insert(0, made.router.routes.pop())  # matched first, as the hot routes are
        return made


    if __name__ == "__main__":
        port, workers = int(sys.argv[1]), int(sys.argv[2])
        options = dict(host="127.0.0.1", port=port, log_level="warning", **SERVER_OPTIONS)
        sock = listening_socket("127.0.0.1", port)
        if workers > 1:
            config = uvicorn.Config("run_constant:app", factory=True, workers=workers, **options)
            supervise_with_worker(config, sock, None)
        else:
            uvicorn.Server(uvicorn.Config(app(), **options)).run(sockets=[sock])
    """
)
PATCH_SCRIPT = textwrap.dedent(
    """
    local n = 0
    -- wrk.format's headers replace those given with -H: carry them over (the key).
    local headers = {["Content-Type"] = "application/json"}
    for name, value in pairs(wrk.headers) do headers[name] = value end
    request = function()
      n = n + 1
      local body = '{"resources": {"dashboards": ' .. (1 + n % 2) .. '}}'
      return wrk.format("PATCH", nil, headers, body)
    end
    """
)
ENDPOINTS = ("constant", "get", "me", "published", "patch")


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_up(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{url} did not start")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not start")


@contextmanager
def serving(command: list[str], env: dict[str, str], probe: str) -> Iterator[int]:
    """Start the server and yield its process id."""
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_up(probe, process)
        yield process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def wrk(url: str, args: argparse.Namespace, headers: dict[str, str], script: str | None = None) -> float:
    command = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.seconds}s", "--latency"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    if script:
        command += ["-s", script]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if bad:
        raise SystemExit(f"{url} answered {bad.group(1)} errors:\n{out}")
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert found is not None, out
    return float(found.group(1))


def seed(base: str, partner_key: str) -> dict[str, str]:
    """A client in Trial with a user and a metered key, and a published dashboard; return the
    paths and credentials the endpoints need."""
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {partner_key}"}, timeout=30) as http:
        room = {"dashboards": 2, "users": 2, "published_links": 2, "api_calls_per_day": 1_000_000_000}
        client = http.post("/api/1/clients", json={"name": "Floor", "status": "trial", "resources": room})
        client.raise_for_status()
        client_id = client.json()["id"]
        admin = {"email": "floor@client.test", "name": "Floor", "role": "admin", "password": "floor-bench-42"}
        user = http.post(f"/api/1/clients/{client_id}/users", json=admin)
        user.raise_for_status()
        key = http.post(
            f"/api/1/clients/{client_id}/users/{user.json()['id']}/api-keys", json={"name": "floor"}
        )
        key.raise_for_status()
        rows = [{"month": m, "sales": 100 + 7 * n} for n, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May"))]
        source = http.post(
            f"/api/1/clients/{client_id}/datasources", json={"name": "Sales", "kind": "inline", "rows": rows}
        )
        source.raise_for_status()
        source_id, bars = source.json()["id"], {"x": "month", "y": "sales"}
        klips = [
            {"title": "Sales", "kind": "value", "datasource_id": source_id, "columns": {"value": "sales"}},
            {"title": "Month", "kind": "bar", "datasource_id": source_id, "columns": bars},
        ]
        board = http.post(f"/api/1/clients/{client_id}/dashboards", json={"name": "Board", "klips": klips})
        board.raise_for_status()
        link = http.post(f"/api/1/dashboards/{board.json()['id']}/published-links", json={"name": "Floor"})
        link.raise_for_status()
    return {
        "client_path": f"/api/1/clients/{client_id}",
        "client_key": key.json()["secret"],
        "published_path": "/published/" + link.json()["url"].rsplit("/", 1)[1],
    }


def prepared(setting: dict[str, str]) -> tuple[dict[str, str], str]:
    """The servers' environment, once the database is migrated and has a partner; its API key."""
    env = {
        **os.environ,
        **setting,
        # A bench measures throughput, not the burst limit of one key.
        "TENANTRY_API_BURST_PER_SECOND": "1000000",
        "TENANTRY_LOG_LEVEL": "WARNING",
    }
    subprocess.run([BIN / "tenantry", "db", "upgrade"], env=env, check=True, capture_output=True)
    made = subprocess.run(
        [BIN / "tenantry", "partner", "create", "Floor", "--admin-email", "floor@partner.test"],
        env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    return env, json.loads(made.stdout)["api_key"]


def with_hello(folder: str, env: dict[str, str]) -> dict[str, str]:
    """Write the hello-world app and its runner into `folder`; the environment that imports them."""
    Path(folder, "hello.py").write_text(HELLO)
    Path(folder, "run_hello.py").write_text(RUN_HELLO)
    return {**env, "PYTHONPATH": folder + os.pathsep + env.get("PYTHONPATH", "")}


def hello_command(folder: str, port: int, workers: int) -> list[str]:
    return [sys.executable, str(Path(folder, "run_hello.py")), str(port), str(workers)]


def tenantry_command(port: int, workers: int) -> list[str]:
    return [str(BIN / "tenantry"), "serve", "--port", str(port), "--no-worker", "--workers", str(workers)]


def measure(label: str, setting: dict[str, str], args: argparse.Namespace) -> dict[str, float]:
    env, partner_key = prepared(setting)
    rates: dict[str, list[float]] = {name: [] for name in ("floor", *args.only)}
    with tempfile.TemporaryDirectory() as folder:
        env = with_hello(folder, env)
        script = Path(folder, "patch.lua")
        script.write_text(PATCH_SCRIPT)
        hello_port, tenantry_port = free_port(), free_port()
        Path(folder, "run_constant.py").write_text(RUN_CONSTANT)
        constant_port = free_port()
        run_constant = str(Path(folder, "run_constant.py"))
        constant = [sys.executable, run_constant, str(constant_port), str(args.workers)]
        hello = hello_command(folder, hello_port, args.workers)
        tenantry = tenantry_command(tenantry_port, args.workers)
        hello_url, base = f"http://127.0.0.1:{hello_port}", f"http://127.0.0.1:{tenantry_port}"
        with (
            serving(hello, env, hello_url + "/hello"),
            serving(tenantry, env, base + "/healthz"),
            serving(constant, env, f"http://127.0.0.1:{constant_port}/bench/constant")
            if "constant" in args.only
            else nullcontext(),
        ):
            seeded = seed(base, partner_key)
            partner = {"Authorization": f"Bearer {partner_key}"}
            client = {"Authorization": f"Bearer {seeded['client_key']}"}
            targets = {
                "constant": (f"http://127.0.0.1:{constant_port}/bench/constant", {}, None),
                "get": (base + seeded["client_path"], partner, None),
                "me": (base + "/api/1/me", client, None),
                "published": (base + seeded["published_path"], {}, None),
                "patch": (base + seeded["client_path"], partner, str(script)),
            }
            for name in args.only:  # warm up: first requests build caches and prepare statements
                url, headers, lua = targets[name]
                args_warm = argparse.Namespace(**{**vars(args), "seconds": 1})
                wrk(url, args_warm, headers, lua)
            for _ in range(args.rounds):
                rates["floor"].append(wrk(hello_url + "/hello", args, {}))
                for name in args.only:
                    url, headers, lua = targets[name]
                    rates[name].append(wrk(url, args, headers, lua))
    for name, values in rates.items():
        print(f"  {label} {name}: " + ", ".join(f"{v:.0f}/s" for v in values), file=sys.stderr)
    return {
        name: statistics.median(r / f for r, f in zip(values, rates["floor"], strict=True))
        for name, values in rates.items()
        if name != "floor"
    } | {"floor": statistics.median(rates["floor"])}


SCALED = ("get", "me", "published")


def measure_scaling(label: str, setting: dict[str, str], args: argparse.Namespace) -> dict[str, float]:
    """Each endpoint and the floor served by one process and by many (`--workers`, 2 at least):
    the median over the rounds of many/one."""
    env, partner_key = prepared(setting)
    many = max(2, args.workers)
    names = [name for name in args.only if name in SCALED]
    rates: dict[tuple[str, int], list[float]] = {}
    busy: dict[str, list[float]] = {}  # cores busy while one process served each
    # The cores each part kept busy (the server under test, PostgreSQL, Redis, wrk, the rest).
    parts: dict[tuple[str, int], list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as folder:
        env = with_hello(folder, env)
        ports = {(kind, n): free_port() for kind in ("hello", "tenantry") for n in (1, many)}
        url = {key: f"http://127.0.0.1:{port}" for key, port in ports.items()}
        hello = {n: hello_command(folder, ports["hello", n], n) for n in (1, many)}
        tenantry = {n: tenantry_command(ports["tenantry", n], n) for n in (1, many)}
        with (
            serving(hello[1], env, url["hello", 1] + "/hello") as hello_1,
            serving(hello[many], env, url["hello", many] + "/hello") as hello_many,
            serving(tenantry[1], env, url["tenantry", 1] + "/healthz") as tenantry_1,
            serving(tenantry[many], env, url["tenantry", many] + "/healthz") as tenantry_many,
        ):
            server = {
                ("hello", 1): hello_1,
                ("hello", many): hello_many,
                ("tenantry", 1): tenantry_1,
                ("tenantry", many): tenantry_many,
            }
            seeded = seed(url["tenantry", 1], partner_key)
            targets = {
                "floor": ("hello", "/hello", {}),
                "get": ("tenantry", seeded["client_path"], {"Authorization": f"Bearer {partner_key}"}),
                "me": ("tenantry", "/api/1/me", {"Authorization": f"Bearer {seeded['client_key']}"}),
                "published": ("tenantry", seeded["published_path"], {}),
            }
            warm = argparse.Namespace(**{**vars(args), "seconds": 1})
            for name in ("floor", *names):  # first requests build caches and prepare statements
                kind, path, headers = targets[name]
                for n in (1, many):
                    wrk(url[kind, n] + path, warm, headers)
            for _ in range(args.rounds):
                for name in ("floor", *names):
                    kind, path, headers = targets[name]
                    for n in (1, many):
                        before, processes_before, started = cpu_times(), process_times(), time.monotonic()
                        wrk_before = children_seconds()
                        rates.setdefault((name, n), []).append(wrk(url[kind, n] + path, args, headers))
                        cores = cores_busy(before, cpu_times()) if n == 1 else None
                        processes_after, seconds = process_times(), time.monotonic() - started
                        under_test = descendants(processes_after, {server[kind, n]})
                        by_part = cores_by_role(
                            processes_before,
                            processes_after,
                            seconds,
                            partial(part, under_test=under_test),
                        )
                        # wrk has ended by now: its time is in this process's children's.
                        by_part["wrk"] = (children_seconds() - wrk_before) / seconds
                        parts.setdefault((name, n), []).append(by_part)
                        if cores:
                            busy.setdefault(name, []).append(cores)
    for (name, n), values in rates.items():
        shown = ", ".join(f"{v:.0f}/s" for v in values)
        print(f"  {label} {name}, {n} process{'es' if n > 1 else ''}: {shown}", file=sys.stderr)
    for name, values in busy.items():
        shown = ", ".join(f"{v:.2f}" for v in values)
        print(f"  {label} {name}, cores busy with 1 process: {shown}", file=sys.stderr)
    for (name, n), readings in parts.items():
        order = ("server", "postgres", "redis", "wrk", "other")
        shown = ", ".join(
            f"{p} {statistics.median(r.get(p, 0.0) for r in readings):.2f}"
            for p in order
            if any(p in r for r in readings)
        )
        per_request = statistics.median(
            sum(r.values()) / rate * 1e6 for r, rate in zip(readings, rates[name, n], strict=True)
        )
        processes = f"{n} process{'es' if n > 1 else ''}"
        print(
            f"  {label} {name}, {processes}, cores by part: {shown}; {per_request:.0f} µs of CPU a request",
            file=sys.stderr,
        )
    # However the software spreads its work, the many processes can at best do the machine's cores
    # over the cores busy with one (wrk, PostgreSQL and Redis included) times as much.
    ceilings = {
        f"{name} ceiling": (os.cpu_count() or 1) / statistics.median(values) for name, values in busy.items()
    }
    return (
        {
            name: statistics.median(m / o for m, o in zip(rates[name, many], rates[name, 1], strict=True))
            for name in ("floor", *names)
        }
        | ceilings
        | {"processes": many}
    )


def children_seconds() -> float:
    """The CPU time of this process's ended children (user + system)."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def part(pid: int, name: str, under_test: set[int]) -> str:
    """Which part of the measurement a process is (wrk has ended when this is asked: its time is
    read from this process's children's)."""
    if pid in under_test:
        return "server"
    if name.startswith("postgres"):
        return "postgres"
    return "redis" if name.startswith("redis") else "other"


def scaling_line(label: str, ratios: dict[str, float]) -> str:
    parts = [
        f"{name}={ratios[name]:.2f}"
        + (f" (ceiling {ratios[name + ' ceiling']:.2f})" if name + " ceiling" in ratios else "")
        for name in ("floor", *SCALED)
        if name in ratios
    ]
    return f"{label} {ratios['processes']:.0f} processes / 1: " + " ".join(parts)


def redis_reachable(url: str) -> bool:
    from redis import Redis
    from redis.exceptions import RedisError

    try:
        with Redis.from_url(url, socket_connect_timeout=1) as redis:
            return bool(redis.ping())
    except RedisError:
        return False


def line(label: str, ratios: dict[str, float]) -> str:
    parts = [f"{name}={ratios[name]:.2f}" for name in ENDPOINTS if name in ratios]
    return f"{label} (floor {ratios['floor']:.0f} req/s): " + " ".join(parts)


def report(label: str, setting: dict[str, str], args: argparse.Namespace) -> str:
    if args.scaling:
        return scaling_line(label, measure_scaling(label, setting, args))
    return line(label, measure(label, setting, args))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn processes of each server")
    parser.add_argument("--postgres", metavar="URL", default=DEFAULT_POSTGRES)
    parser.add_argument("--redis", metavar="URL", default=DEFAULT_REDIS)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--only", default=",".join(ENDPOINTS), help="endpoints to measure")
    parser.add_argument(
        "--scaling", action="store_true", help="many processes (--workers, 2 at least) against one"
    )
    args = parser.parse_args()
    args.only = [name for name in args.only.split(",") if name]
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: `make bench` installs it (apt-get install wrk)")
    with tempfile.TemporaryDirectory() as folder:
        setting = {"TENANTRY_DATABASE_URL": f"sqlite:///{folder}/floor.db", "TENANTRY_DATA_DIR": folder}
        lines = [report("SQLite", setting, args)]
    if args.no_postgres:
        pass
    elif postgres_reachable(args.postgres) and redis_reachable(args.redis):
        from redis import Redis

        with postgres_database(args.postgres) as database, tempfile.TemporaryDirectory() as folder:
            setting = {
                "TENANTRY_DATABASE_URL": database.url,
                "TENANTRY_REDIS_URL": args.redis,
                "TENANTRY_DATA_DIR": folder,
            }
            try:
                lines.append(report("PostgreSQL+Redis", setting, args))
            finally:
                with Redis.from_url(args.redis) as redis:
                    redis.flushdb()
    else:
        print(f"PostgreSQL at {args.postgres} or Redis at {args.redis} not reachable", file=sys.stderr)
    print(" | ".join(lines))


if __name__ == "__main__":
    main()
