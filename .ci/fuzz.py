"""The fuzzing gate: schemathesis over /api/1/openapi.json with a partner key, a client key and no
key, against a real server on a fresh SQLite database. It fails on any 5xx answer and on any
answer that does not match the schema (status, content type, body).

Run by `.ci/run` (`make fuzz` runs it alone); the whole gate keeps within `--budget` seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
# Operations that end the run's own access: the fuzzer would lock itself out and test nothing after.
SELF_LOCKOUT = "^/api/1/me/api-keys/"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def tenantry(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run([str(BIN / "tenantry"), *args], env=env, capture_output=True, text=True, check=True)
    return done.stdout


def seed(base: str, partner_key: str) -> str:
    """A client in Trial with a user, content and a client key; return the client key."""
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {partner_key}"}, timeout=30) as http:
        resources = {"dashboards": 20, "users": 20, "published_links": 20, "api_calls_per_day": 1_000_000}
        client = http.post("/api/1/clients", json={"name": "Fuzz", "status": "trial", "resources": resources})
        client.raise_for_status()
        client_id = client.json()["id"]
        admin = {"email": "fuzz@client.test", "name": "Fuzz", "role": "admin", "password": "fuzzy-wuzzy-42"}
        user = http.post(f"/api/1/clients/{client_id}/users", json=admin)
        user.raise_for_status()
        source = http.post(
            f"/api/1/clients/{client_id}/datasources",
            json={"name": "Rows", "kind": "inline", "rows": [{"month": "Jan", "sales": 1}]},
        )
        source.raise_for_status()
        klip = {"title": "T", "kind": "table", "datasource_id": source.json()["id"], "columns": {}}
        board = http.post(f"/api/1/clients/{client_id}/dashboards", json={"name": "D", "klips": [klip]})
        board.raise_for_status()
        user_id = user.json()["id"]
        key = http.post(f"/api/1/clients/{client_id}/users/{user_id}/api-keys", json={"name": "fuzz"})
        key.raise_for_status()
        return str(key.json()["secret"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--budget", type=float, default=270.0, help="seconds for the three runs together")
    parser.add_argument("--seed", type=int, default=None, help="schemathesis' random seed")
    options = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="tenantry-fuzz-"))
    env = {
        **os.environ,
        "TENANTRY_DATABASE_URL": f"sqlite:///{work}/fuzz.db",
        "TENANTRY_DATA_DIR": str(work),
        "TENANTRY_API_BURST_PER_SECOND": "100000",
        "TENANTRY_LOG_FORMAT": "json",
    }
    for name in ("TENANTRY_REDIS_URL", "TENANTRY_SMTP_HOST"):
        env.pop(name, None)
    tenantry("db", "upgrade", env=env)
    made = tenantry("partner", "create", "Fuzz Partner", "--admin-email", "fuzz@partner.test", env=env)
    created = json.loads(made)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = (work / "server.log").open("wb")
    server = subprocess.Popen(
        [str(BIN / "tenantry"), "serve", "--port", str(port), "--no-worker"], env=env, stdout=log, stderr=log
    )
    failed = False
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                print("the server did not start; its log:", (work / "server.log").read_text(), sep="\n")
                return 1
            time.sleep(0.2)
        client_key = seed(base, created["api_key"])
        # The client's key first: the partner's run may well delete that client.
        runs = [
            ("client key", f"Authorization: Bearer {client_key}", 0.35),
            ("partner key", f"Authorization: Bearer {created['api_key']}", 0.5),
            ("no key", None, 0.15),
        ]
        for name, header, share in runs:
            command = [
                sys.executable, str(Path(__file__).with_name("schemathesis_cli.py")), "run",
                f"{base}/api/1/openapi.json",
                "--checks", CHECKS,
                "--max-time", str(max(10, int(options.budget * share))),
                "--workers", "2",
                "--request-timeout", "30",
                "--exclude-path-regex", SELF_LOCKOUT,
                "--generation-database", "none",
                "--no-color",
            ]  # fmt: skip
            if header:
                command += ["--header", header]
            if options.seed is not None:
                command += ["--seed", str(options.seed)]
            print(f"== schemathesis with {name}", flush=True)
            if subprocess.run(command, env=env).returncode != 0:
                failed = True
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    if failed:
        print(f"the server's log is in {work / 'server.log'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
