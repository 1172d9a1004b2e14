"""Render every error once, as RFC 9457 problem+json.

Errors the application raises (`TenantryError`), malformed requests (422) and HTTP errors of the
framework (404, 405, 413, ...) are rendered here; anything else is answered by the outermost
middleware (`tenantry.api.middleware`), which also turns database faults into 503.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from tenantry.errors import TenantryError, problem_document

PROBLEM = "application/problem+json"

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


problem_body = problem_document


def encode(body: dict[str, Any]) -> bytes:
    """ASCII JSON: any text a request carried (even a lone surrogate) can be echoed back safely."""
    return json.dumps(body, separators=(",", ":")).encode()


class ProblemResponse(JSONResponse):
    media_type = PROBLEM

    def render(self, content: Any) -> bytes:
        return encode(content)


def problem_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return ProblemResponse(body, status_code=body["status"], headers=headers)


def problem(status: int, code: str, title: str, detail: str, **extensions: Any) -> JSONResponse:
    return problem_response(problem_body(status, code, title, detail, **extensions))


def _describe(error: dict[str, Any]) -> dict[str, Any]:
    location = [str(part) for part in error.get("loc", ())]
    return {"loc": location, "msg": error.get("msg", ""), "type": error.get("type", "")}


async def tenantry_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, TenantryError)
    return problem_response(exc.to_problem(), exc.headers or None)


async def validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [_describe(e) for e in exc.errors()]
    first = errors[0] if errors else {"loc": [], "msg": "invalid request", "type": ""}
    where = ".".join(p for p in first["loc"] if p not in ("body",)) or "request"
    if first["type"] == "json_invalid":
        detail = "The request body is not valid JSON."
    else:
        detail = f"{where}: {first['msg']}" if first.get("msg") else "The request is malformed."
    return problem(422, "validation_error", "Invalid request", detail, errors=errors)


async def http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    detail = exc.detail if isinstance(exc.detail, str) else "Request failed."
    response = problem(exc.status_code, code, detail, detail)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


def install(app: FastAPI) -> None:
    app.add_exception_handler(TenantryError, tenantry_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
