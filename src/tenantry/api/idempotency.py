"""`Idempotency-Key` on POST (SPEC §8): the same key and body within 24 h replays the first answer.

A pure ASGI middleware, so it sees the exact bytes of the request and of the answer. Keys are per
caller (the hash of the credentials sent), so two callers never see each other's answers. The
first request with a key inserts a pending record, committed before the request runs: a
concurrent duplicate finds it and is told to retry instead of running twice. Answers of 500 and
above are not kept, so a failed attempt can be retried with the same key.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tenantry.db.models import IdempotencyRecord

WINDOW = timedelta(hours=24)
MAX_KEY_LENGTH = 255


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, prefix: str = "/api/") -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        key = headers.get("idempotency-key")
        credentials = headers.get("authorization")
        if key is None or credentials is None:
            await self.app(scope, receive, send)
            return
        if not key or len(key) > MAX_KEY_LENGTH:
            await _send_problem(
                send,
                422,
                "validation_error",
                "Invalid request",
                f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters.",
            )
            return

        body = await _read_body(receive)
        request_hash = hashlib.sha256(
            scope["method"].encode()
            + b" "
            + scope["path"].encode()
            + b"?"
            + scope.get("query_string", b"")
            + b"\n"
            + body
        ).hexdigest()
        owner = hashlib.sha256(credentials.encode()).hexdigest()
        services = scope["app"].state.services
        database, now = services.database, services.clock.now()

        from anyio import to_thread

        async with services.write_gate():
            verdict = await to_thread.run_sync(_claim, database, owner, key, request_hash, now)
        if verdict[0] == "conflict":
            await _send_problem(
                send,
                409,
                "idempotency_conflict",
                "Idempotency key reused",
                "This Idempotency-Key was used with a different request body.",
            )
            return
        if verdict[0] == "pending":
            await _send_problem(
                send,
                409,
                "idempotency_conflict",
                "Request in progress",
                "A request with this Idempotency-Key is still being processed; retry shortly.",
                headers=[(b"retry-after", b"1")],
            )
            return
        if verdict[0] == "replay":
            _, status, content_type, stored = verdict
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [
                        (b"content-type", (content_type or "application/json").encode()),
                        (b"content-length", str(len(stored)).encode()),
                        (b"idempotent-replayed", b"true"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": stored})
            return

        replayed = False

        async def replay_receive() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        captured: dict[str, Any] = {"status": 500, "content_type": None, "body": bytearray()}

        async def capture_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                for name, value in message.get("headers", []):
                    if name.lower() == b"content-type":
                        captured["content_type"] = value.decode("latin-1")
            elif message["type"] == "http.response.body":
                captured["body"].extend(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, replay_receive, capture_send)
        finally:
            await to_thread.run_sync(
                _finish,
                database,
                owner,
                key,
                captured["status"],
                captured["content_type"],
                bytes(captured["body"]),
            )


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _claim(database: Any, owner: str, key: str, request_hash: str, now: Any) -> tuple[Any, ...]:
    with database.session(write=True) as db:
        db.execute(
            delete(IdempotencyRecord).where(
                IdempotencyRecord.scope == owner,
                IdempotencyRecord.key == key,
                IdempotencyRecord.created_at < now - WINDOW,
            )
        )
        record = db.scalars(
            select(IdempotencyRecord).where(IdempotencyRecord.scope == owner, IdempotencyRecord.key == key)
        ).one_or_none()
        if record is None:
            db.add(IdempotencyRecord(scope=owner, key=key, request_hash=request_hash, created_at=now))
            try:
                db.commit()
            except IntegrityError:
                db.rollback()
                return ("pending",)
            return ("run",)
        db.commit()
        if record.request_hash != request_hash:
            return ("conflict",)
        if record.status_code is None:
            return ("pending",)
        return ("replay", record.status_code, record.content_type, record.body or b"")


def _finish(database: Any, owner: str, key: str, status: int, content_type: str | None, body: bytes) -> None:
    with database.session(write=True) as db:
        record = db.scalars(
            select(IdempotencyRecord).where(IdempotencyRecord.scope == owner, IdempotencyRecord.key == key)
        ).one_or_none()
        if record is not None:
            if status >= 500:
                db.delete(record)
            else:
                record.status_code, record.content_type, record.body = status, content_type, body
        db.commit()


async def _send_problem(
    send: Send,
    status: int,
    code: str,
    title: str,
    detail: str,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    payload = json.dumps(
        {
            "type": f"https://tenantry.dev/problems/{code.replace('_', '-')}",
            "title": title,
            "status": status,
            "detail": detail,
            "code": code,
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(payload)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
