"""`Idempotency-Key` on POST (SPEC §8): the same key and body within 24 h replays the first answer.

A pure ASGI middleware, so it sees the exact bytes of the request and of the answer. It runs after
authentication (`ApiAuthMiddleware`): an anonymous request never reaches it, so it stores nothing,
and a replay needs the same API key, still valid (a revoked key is refused before any replay).
Keys are per API key, so two callers never see each other's answers. The first request with a key
inserts a pending record, committed before the request runs: a concurrent duplicate finds it and is
told to retry instead of running twice. The request's own transaction marks the record carried out
when it commits (`api.deps.Work`). A pending record older than the request time-out belongs to a
request that died with its process: if it had not committed, the next attempt takes the record
over (should the first still be running after all, its transaction finds the record taken over
and keeps nothing: 409); if it had, its answer is lost and the retry is refused (409) rather than
done twice. Answers
of 500 and above are not kept, so a failed attempt can be retried with the same key, unless it
failed after its work committed; nor are refusals to wait (429), which a retry after the wait
must not find again. Requests signed in with a browser session (no API key) are not
deduplicated. A request whose connection dropped before its body arrived in full is not a request:
it claims no key.

What is kept holds no secret in the clear: the request is known by an HMAC of it (keyed with the
secret key), never a plain digest a guessed password could be checked against, and the answer
(which may be an API key's secret or a TOTP secret, shown once) is sealed with the vault. Records
past their 24 hours are removed, at most once a minute per process, by the next keyed request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tenantry.api.idempotency_marks import CLAIMED
from tenantry.api.middleware import send_problem
from tenantry.api.problems import problem_body
from tenantry.auth.principal import Principal
from tenantry.db.models import IdempotencyRecord
from tenantry.vault import Vault, VaultError

WINDOW = timedelta(hours=24)
MAX_KEY_LENGTH = 255
# How often a process removes the records past their window.
PURGE_EVERY = timedelta(minutes=1)
# A kept answer, sealed: this prefix, then the vault's text of its base64.
_SEALED = b"sealed:"


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, prefix: str = "/api/") -> None:
        self.app = app
        self.prefix = prefix
        self._purged_at: datetime | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        key = headers.get("idempotency-key")
        caller: Principal | None = scope.get("state", {}).get("principal")
        if key is None or caller is None or caller.api_key_id is None:
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
        if body is None:
            return  # the connection dropped before the body was in: no request, and no one to answer
        request = (
            scope["method"].encode()
            + b" "
            + scope["path"].encode()
            + b"?"
            + scope.get("query_string", b"")
            + b"\n"
            + body
        )
        services = scope["app"].state.services
        secret = services.settings.resolved_secret_key.encode()
        request_hash = hmac.new(secret, request, hashlib.sha256).hexdigest()
        # What records made before requests were known by an HMAC hold: they match for their 24 hours.
        legacy_hash = hashlib.sha256(request).hexdigest()
        owner = f"api_key:{caller.api_key_id}"
        database, vault, now = services.database, services.vault, services.clock.now()
        abandoned_before = now - timedelta(seconds=services.settings.request_timeout_seconds)

        from anyio import to_thread

        if self._purged_at is None or now - self._purged_at >= PURGE_EVERY:
            self._purged_at = now
            await to_thread.run_sync(_purge, database, now)
        # One worker-thread call opens the record's transaction, decides and commits.
        verdict = await to_thread.run_sync(
            _claim, database, owner, key, (request_hash, legacy_hash), now, abandoned_before
        )
        if verdict[0] == "replay":
            try:
                verdict = (*verdict[:3], _opened(vault, verdict[3]))
            except (VaultError, ValueError):
                verdict = ("lost",)  # sealed under a key this server no longer has
        if verdict[0] == "conflict":
            await _send_problem(
                send,
                409,
                "idempotency_conflict",
                "Idempotency key reused",
                "This Idempotency-Key was used with a different request body.",
            )
            return
        if verdict[0] == "lost":
            await _send_problem(
                send,
                409,
                "idempotency_conflict",
                "Request carried out, answer lost",
                "The first request with this Idempotency-Key was carried out, but its process ended "
                "before the answer could be kept. It is not done again: read the result instead.",
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

        # The request's transaction marks the record carried out as it commits (`api.deps.Work`),
        # unless a retry took the record over meanwhile (then nothing of this request is kept).
        claimed_at = verdict[1]
        scope.setdefault("state", {})[CLAIMED] = (owner, key, claimed_at)
        try:
            await self.app(scope, replay_receive, capture_send)
        finally:
            await to_thread.run_sync(
                _finish,
                database,
                owner,
                key,
                claimed_at,
                captured["status"],
                captured["content_type"],
                _sealed(vault, bytes(captured["body"])),
            )


async def _read_body(receive: Receive) -> bytes | None:
    """The request's body, or None when the connection dropped before all of it arrived."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _sealed(vault: Vault, body: bytes) -> bytes:
    return _SEALED + vault.seal(base64.b64encode(body).decode("ascii")).encode("ascii")


def _opened(vault: Vault, stored: bytes) -> bytes:
    if not stored.startswith(_SEALED):
        return stored  # kept before answers were sealed
    return base64.b64decode(vault.open(stored[len(_SEALED) :].decode("ascii")), validate=True)


def rotate_kept_answers(db: Session, vault: Vault) -> tuple[int, int]:
    """Seal every kept answer again under the vault's current key (with `tenantry secrets rotate`),
    so that retiring an old key loses no replay of the last 24 hours: (how many were sealed again,
    how many no configured key opens, left as they are; they replay as lost, and go with their
    window)."""
    rotated = unreadable = 0
    kept = db.execute(
        select(IdempotencyRecord.id, IdempotencyRecord.body).where(IdempotencyRecord.body.is_not(None))
    ).all()
    for record_id, body in kept:
        stored = bytes(body or b"")
        if not stored.startswith(_SEALED):
            continue  # kept before answers were sealed
        text = stored[len(_SEALED) :].decode("ascii")
        try:
            resealed = vault.rotate(text)
        except VaultError:
            unreadable += 1
            continue
        if resealed == text:
            continue
        record = db.get(IdempotencyRecord, record_id)
        assert record is not None  # read in this transaction
        record.body = _SEALED + resealed.encode("ascii")
        rotated += 1
    db.flush()
    return rotated, unreadable


def _purge(database: Any, now: datetime) -> None:
    """Remove the records past their window: they answer no one any more."""
    with database.session(write=True) as db:
        db.execute(delete(IdempotencyRecord).where(IdempotencyRecord.created_at < now - WINDOW))
        db.commit()


def _claim(
    database: Any,
    owner: str,
    key: str,
    hashes: tuple[str, str],
    now: datetime,
    abandoned_before: datetime,
) -> tuple[Any, ...]:
    """`hashes`: the request's, then the plain digest records made before the HMAC hold."""
    request_hash = hashes[0]
    with database.session(write=True) as db:
        db.execute(
            delete(IdempotencyRecord).where(
                IdempotencyRecord.scope == owner,
                IdempotencyRecord.key == key,
                IdempotencyRecord.created_at < now - WINDOW,
            )
        )
        record = db.scalars(
            select(IdempotencyRecord)
            .where(IdempotencyRecord.scope == owner, IdempotencyRecord.key == key)
            .with_for_update()
        ).one_or_none()
        if record is not None and record.status_code is None and record.created_at < abandoned_before:
            # Pending for longer than any request may run: its request died.
            if record.carried_out_at is not None:
                db.commit()
                # After its work committed: doing it again would do it twice.
                return ("lost",) if record.request_hash in hashes else ("conflict",)
            # Before its work committed: this one runs instead. Should the first still be running,
            # its own transaction finds the record taken over, and keeps nothing (`IdempotencyTakenOver`).
            record.request_hash, record.created_at = request_hash, now
            db.commit()
            return ("run", now)
        if record is None:
            db.add(IdempotencyRecord(scope=owner, key=key, request_hash=request_hash, created_at=now))
            try:
                db.commit()
            except IntegrityError:
                db.rollback()
                return ("pending",)
            return ("run", now)
        db.commit()
        if record.request_hash not in hashes:
            return ("conflict",)
        if record.status_code is None:
            return ("pending",)
        return ("replay", record.status_code, record.content_type, record.body or b"")


def _finish(
    database: Any,
    owner: str,
    key: str,
    claimed_at: datetime,
    status: int,
    content_type: str | None,
    body: bytes,
) -> None:
    """Keep the answer on the record this request claimed (not on one a retry took over)."""
    with database.session(write=True) as db:
        record = db.scalars(
            select(IdempotencyRecord).where(
                IdempotencyRecord.scope == owner,
                IdempotencyRecord.key == key,
                IdempotencyRecord.created_at == claimed_at,
            )
        ).one_or_none()
        if record is not None:
            if (status >= 500 or status == 429) and record.carried_out_at is None:
                # Nothing was done: the key may be used again at once. A 429 too: it says to
                # retry after its wait, and a retry with the same key must then run, not be told
                # the same again (its Retry-After would be gone: only the body is kept).
                db.delete(record)
            elif status >= 500:
                # Failed after its work committed: kept pending, so that a retry is told to wait,
                # then that the request was carried out, and is never done twice.
                pass
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
    extra = {k.decode("latin-1"): v.decode("latin-1") for k, v in headers or []}
    await send_problem(send, problem_body(status, code, title, detail), extra)
