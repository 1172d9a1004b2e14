"""Many clients at once in the console (SPEC §15): importing a CSV file (/partner/clients/import:
a preview of every line first, then the same file applied, all or nothing) and changing the status
of the clients selected on the list (a dry run first, then confirmed).

The file travels from the preview to the apply step as text in the apply form (a hidden field the
preview fills), so nothing is kept on the server between the two; the apply step checks it all
again. Both steps call the same service functions as `POST /api/1/clients/import` and
`POST /api/1/clients/bulk-status`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from tenantry import pool
from tenantry.api.deps import ClockDep, MailerDep, SettingsDep, VaultDep, WorkDep
from tenantry.auth.sessions import SignedIn
from tenantry.clients import bulk
from tenantry.clients import repository as clients_repo
from tenantry.clients.api import import_rows
from tenantry.clients.schemas import BulkStatus
from tenantry.clock import Clock
from tenantry.errors import InvalidInput
from tenantry.policy import Status
from tenantry.users.service import Inviter
from tenantry.vault import Vault
from tenantry.web.clients import can_write
from tenantry.web.pages import PageRoute, Visit, back, form_sender, page, visitor
from tenantry.web.plan import RESOURCE_WORDS
from tenantry.web.templates_pages import SETTABLE, Ids, ids_of

router = APIRouter(prefix="/partner/clients", include_in_schema=False, route_class=PageRoute)

# A file the import page takes: well below the request body limit, so it is refused in a
# sentence on the page; a form field holding it stays within what a form field may hold.
MAX_FILE_BYTES = 1_000_000
SAMPLE = ",".join((*bulk.COLUMNS, "prop.region")) + "\r\n"
Reason = Annotated[str, Form(max_length=500)]


def _signed_in(db: Session, visit: Visit) -> SignedIn:
    return visit.console(db)


@router.get("/import", response_class=HTMLResponse)
async def import_page(request: Request, visit: Annotated[Visit, visitor()], work: WorkDep) -> Response:
    signed_in = await work(_signed_in, visit)
    return page(
        request,
        signed_in,
        "partner_clients_import.html",
        columns=bulk.COLUMNS,
        can_write=can_write(signed_in),
        preview=None,
        max_bytes=MAX_FILE_BYTES,
    )


@router.get("/import/sample.csv")
async def sample(visit: Annotated[Visit, visitor()], work: WorkDep) -> Response:
    await work(_signed_in, visit)
    return Response(
        SAMPLE,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="clients.csv"'},
    )


def _csv_rows(text: str) -> list[tuple[int, dict[str, object]]]:
    return import_rows(text.encode(), "text/csv")


def _preview(
    db: Session, visit: Visit, clock: Clock, inviter: Inviter, vault: Vault, text: str
) -> tuple[SignedIn, dict[str, Any]]:
    signed_in = visit.console(db)
    principal = signed_in.principal
    rows = _csv_rows(text)
    if not rows:
        raise InvalidInput("The file has no clients: one line per client under the header row.", field="file")
    result = bulk.import_clients(db, clock, principal, inviter, rows, dry_run=True, vault=vault)
    # Each line's name as the file gives it, to show next to the line's outcome.
    names = {line: str(row.get("name") or "")[:200] for line, row in rows}
    lines = [{**row, "name": names.get(row["line"], "")} for row in result.rows]
    return signed_in, {
        "valid": result.valid,
        "lines": lines,
        "bad": sum(1 for line in lines if not line["ok"]),
        "pool_after": [
            {"resource": r, "words": RESOURCE_WORDS.get(r, r), **result.pool_after[r]}
            for r in pool.RESOURCES
            if r in result.pool_after
        ],
        "text": text,
    }


def _file_text(data: bytes) -> str:
    if len(data) > MAX_FILE_BYTES:
        raise InvalidInput(
            f"The file is larger than the {MAX_FILE_BYTES:,} bytes the import page takes; split it.",
            field="file",
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput("The CSV file is not UTF-8 text.", field="file") from None


@router.post("/import", response_class=HTMLResponse)
async def preview_import(
    request: Request,
    visit: Annotated[Visit, form_sender(back_to="/partner/clients/import")],
    work: WorkDep,
    clock: ClockDep,
    mailer: MailerDep,
    settings: SettingsDep,
    vault: VaultDep,
    file: UploadFile | None = None,
) -> Response:
    """The preview: every line, ok or why not, and the pool after; nothing is created."""
    data = await file.read(MAX_FILE_BYTES + 1) if file is not None else b""
    if file is not None:
        await file.close()
    text = _file_text(data)
    inviter = Inviter(mailer, settings.base_url)
    signed_in, preview = await work(_preview, visit, clock, inviter, vault, text)
    return page(
        request,
        signed_in,
        "partner_clients_import.html",
        columns=bulk.COLUMNS,
        can_write=can_write(signed_in),
        preview=preview,
        max_bytes=MAX_FILE_BYTES,
    )


def _apply(db: Session, visit: Visit, clock: Clock, inviter: Inviter, vault: Vault, text: str) -> int:
    principal = visit.console(db).principal
    rows = _csv_rows(text)
    if not rows:
        raise InvalidInput("The file has no clients.", field="file")
    result = bulk.import_clients(db, clock, principal, inviter, rows, dry_run=False, vault=vault)
    return len(result.rows)


@router.post("/import/apply")
async def apply_import(
    request: Request,
    visit: Annotated[Visit, form_sender(back_to="/partner/clients/import")],
    work: WorkDep,
    clock: ClockDep,
    mailer: MailerDep,
    settings: SettingsDep,
    vault: VaultDep,
    # The previewed file, as the browser sends it back: each line break as CR LF (twice as long,
    # at most, as the file the preview took).
    csv_text: Annotated[str, Form(max_length=2 * MAX_FILE_BYTES)] = "",
) -> Response:
    """The previewed file applied: every client or none."""
    inviter = Inviter(mailer, settings.base_url)
    created = await work(_apply, visit, clock, inviter, vault, csv_text)
    return back(request, "/partner/clients", notice=f"{created} client{'' if created == 1 else 's'} created.")


# Changing the status of the selected clients


def _status_of(value: str) -> Status:
    if value not in SETTABLE or value == "trial_expired":
        raise InvalidInput("Pick the status to move the selected clients to.", field="status")
    return Status(value)


def _bulk_status(
    db: Session, visit: Visit, clock: Clock, client_ids: list[str], status: str, reason: str, dry_run: bool
) -> tuple[SignedIn, dict[str, Any]]:
    signed_in = visit.console(db)
    principal = signed_in.principal
    chosen = ids_of(client_ids)
    if not chosen:
        raise InvalidInput("Select at least one client.", field="client_ids")
    target = _status_of(status)
    # The API's own checks of the reason (length, control characters).
    asked = BulkStatus(client_ids=chosen, status=target.value, reason=reason, dry_run=dry_run)
    outcomes, pool_after = bulk.bulk_status(
        db, clock, principal, chosen, target, asked.reason, dry_run=dry_run
    )
    names = {c.id: c.name for c in clients_repo.clients_of_partner(db, principal.partner_id, chosen).values()}
    return signed_in, {
        "changes": [
            {
                "client_id": o.client_id,
                "client": names.get(o.client_id, ""),
                "from": o.from_,
                "changed": o.changed,
            }
            for o in outcomes
        ],
        "client_ids": chosen,
        "status": target.value,
        "words": SETTABLE[target.value],
        "reason": reason,
        "pool_after": [
            {"resource": r, "words": RESOURCE_WORDS.get(r, r), **pool_after[r]}
            for r in pool.RESOURCES
            if r in pool_after
        ],
    }


@router.post("/bulk-status", response_class=HTMLResponse)
async def bulk_status_dry_run(
    request: Request,
    visit: Annotated[Visit, form_sender(back_to="/partner/clients")],
    work: WorkDep,
    clock: ClockDep,
    client_ids: Ids = [],  # noqa: B006 (FastAPI copies it)
    status: Annotated[str, Form(max_length=20)] = "",
    reason: Reason = "",
) -> Response:
    """A dry run: what would change and the pool after, or the refusal naming the client."""
    signed_in, context = await work(_bulk_status, visit, clock, client_ids, status, reason, True)
    return page(request, signed_in, "partner_clients_bulk.html", **context)


@router.post("/bulk-status/confirm")
async def bulk_status_confirmed(
    request: Request,
    visit: Annotated[Visit, form_sender(back_to="/partner/clients")],
    work: WorkDep,
    clock: ClockDep,
    client_ids: Ids = [],  # noqa: B006 (FastAPI copies it)
    status: Annotated[str, Form(max_length=20)] = "",
    reason: Reason = "",
) -> Response:
    _, context = await work(_bulk_status, visit, clock, client_ids, status, reason, False)
    moved = sum(1 for c in context["changes"] if c["changed"])
    return back(
        request,
        "/partner/clients",
        notice=f"{moved} client{'' if moved == 1 else 's'} moved to {context['words']}.",
    )
