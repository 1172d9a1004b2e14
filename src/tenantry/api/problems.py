"""problem+json answers (RFC 9457) for errors raised inside the routes.

Every problem body is built by `tenantry.errors.problem_document` (`problem_body` here), whoever
answers. The exception handlers installed here answer what a route raises: a `TenantryError`
(its status, extensions and `headers`), a malformed request (422 `validation_error`) and the
framework's own HTTP errors (404, 405, ...). What is raised outside the routes (authentication,
the meter, the body limit, admission) and anything unexpected is answered by the outermost
middleware (`tenantry.api.middleware`) with the same body and `send_problem`; it also turns
database faults into 503 `database_unavailable`.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Route

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


# What FastAPI raises (a 400) for a body it could not decode at all: not UTF-8, or JSON nested
# deeper than the parser goes. A malformed body is a 422 (SPEC §8), as invalid JSON already is.
_UNPARSABLE_BODY = "There was an error parsing the body"


async def http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and exc.detail == _UNPARSABLE_BODY:
        return problem(
            422,
            "validation_error",
            "Invalid request",
            "The request body is not valid JSON: it must be UTF-8 text, nested not too deeply.",
        )
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    detail = exc.detail if isinstance(exc.detail, str) else "Request failed."
    response = problem(exc.status_code, code, detail, detail)
    if exc.headers:
        response.headers.update(exc.headers)
    if exc.status_code == 405:
        # Every method the path takes, not only the first route's that matched it (RFC 9110).
        allowed = _methods_of(_request)
        if allowed:
            response.headers["Allow"] = ", ".join(sorted(allowed))
    return response


def _methods_of(request: Request) -> set[str]:
    """The methods of the app's routes whose path matches this request's."""
    methods: set[str] = set()
    scope = {**request.scope, "method": ""}  # a path match, whatever the method
    for route in request.app.router.routes:
        declared = getattr(route, "methods", None)
        if isinstance(route, Route) and declared and route.matches(scope)[0] is not Match.NONE:
            methods |= set(declared)
    return methods


def install(app: FastAPI) -> None:
    app.add_exception_handler(TenantryError, tenantry_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)


# Every /api/1 operation can answer these, each as a problem (SPEC §8): no key or a bad one, a role
# or status that forbids, another tenant's object or none, a state conflict, a body too large, a
# malformed request, the meter's refusals, and a database or server that cannot serve right now.
ERROR_STATUSES = {
    400: "The request body could not be read.",
    401: "No API key, or one that is unknown, revoked or malformed (`unauthenticated`).",
    403: "The caller's role or its client's status forbids it.",
    404: "No such object for this caller (another tenant's objects are never found).",
    409: "Refused by a rule: a transition, the pool, an allocation, a duplicate, an idempotency key.",
    413: "The request body is larger than the server accepts (`payload_too_large`).",
    422: "A malformed request: a body, parameter or header that is not valid (`validation_error`).",
    429: "The daily API-call limit is used up, or too many calls in a second (`Retry-After`).",
    503: "The database, the meter or the server is not available right now (`Retry-After`).",
}
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "An RFC 9457 problem. `code` is stable; other fields depend on the problem.",
    "type": "object",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string"},
    },
    "additionalProperties": True,
}


def document_problems(schema: dict[str, Any], public: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Put the problems every API operation may answer into an OpenAPI document (in place).
    `public`: the paths answered without a caller (no key needed, never a 401 or 403)."""
    schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    schema["components"]["schemas"].pop("HTTPValidationError", None)
    schema["components"]["schemas"].pop("ValidationError", None)
    reference = {"$ref": "#/components/schemas/Problem"}
    # Every operation but the public ones needs a key (or a signed-in session): `ApiAuthMiddleware`
    # checks it first.
    schemes = schema["components"].setdefault("securitySchemes", {})
    schemes.setdefault(
        "HTTPBearer",
        {"type": "http", "scheme": "bearer", "description": "An API key: `Authorization: Bearer tnt_...`"},
    )
    for path, operations in schema.get("paths", {}).items():
        if not path.startswith("/api/1/"):
            continue
        for operation in operations.values():
            operation.setdefault("security", [] if path in public else [{"HTTPBearer": []}])
            responses = operation.setdefault("responses", {})
            for status, description in ERROR_STATUSES.items():
                if path in public and status in (401, 403):
                    continue
                responses[str(status)] = {
                    "description": description,
                    "content": {PROBLEM: {"schema": reference}},
                }
    return schema
