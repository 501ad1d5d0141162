"""The OpenAPI document as clients (and schemathesis) see it.

Every error leaves the API as application/problem+json (see `transactional.api.app`), so every
operation documents a `4XX` problem response instead of FastAPI's default 422 schema, a 503 for
an unreachable database (all but the health probes), and explicitly listed error codes get the
problem body too. Routes that read their JSON body
themselves (to validate it in one pass, e.g. shopper events) document it with `json_body`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from transactional.api.deps import get_current_user

PROBLEM_MEDIA_TYPE = "application/problem+json"
_REF = "#/components/schemas/{model}"
_FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")
_body_schemas: dict[str, dict[str, Any]] = {}


class FieldProblem(BaseModel):
    model_config = ConfigDict(extra="allow")
    field: str | None = Field(description="the offending input, e.g. `events.3.query` or `Authorization`")
    reason: str


class Problem(BaseModel):
    """RFC 9457 problem details, with the offending fields and the request's correlation id."""

    model_config = ConfigDict(extra="allow")
    type: str
    title: str
    status: int
    detail: str
    instance: str
    errors: list[FieldProblem]
    correlation_id: str | None


def _schemas(model: Any) -> dict[str, dict[str, Any]]:
    schema = TypeAdapter(model).json_schema(ref_template=_REF)
    definitions = schema.pop("$defs", {})
    return {**definitions, getattr(model, "__name__", str(model)): schema}


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` for a route that reads and validates `model` from the raw body itself."""
    _body_schemas.update(_schemas(model))
    reference = {"$ref": _REF.format(model=model.__name__)}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": reference}}}}


def _problem_response(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": _REF.format(model="Problem")}}}}


def _is_fastapi_validation_error(response: dict[str, Any]) -> bool:
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    return schema.get("$ref", "").endswith("/HTTPValidationError")


def _requires_sign_in(dependant: Dependant) -> bool:
    return dependant.call is get_current_user or any(map(_requires_sign_in, dependant.dependencies))


def _document_optional_sign_in(document: dict[str, Any], routes: list[Any]) -> None:
    """FastAPI lists the bearer scheme as required wherever a token is read; where a token is
    only optional (anonymous shoppers, registration), say so with an empty alternative."""
    for route in iter_route_contexts(routes):
        dependant = getattr(route, "dependant", None)
        if dependant is None or _requires_sign_in(dependant):
            continue
        for method in route.methods or ():
            operation = document["paths"].get(route.path_format, {}).get(method.lower(), {})
            if operation.get("security") and {} not in operation["security"]:
                operation["security"] = [{}, *operation["security"]]


def _document_problems(document: dict[str, Any]) -> dict[str, Any]:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(_schemas(Problem))
    schemas.update(_body_schemas)
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            responses = operation["responses"]
            if _is_fastapi_validation_error(responses.get("422", {})):
                del responses["422"]
            for status, response in responses.items():
                if status[0] in "45" and not response.get("content"):
                    responses[status] = _problem_response(response.get("description") or "error")
            responses.setdefault("4XX", _problem_response("the request was refused; `errors` names the fields"))
            if "health" not in operation.get("tags", []):
                responses.setdefault("503", _problem_response("the database is unavailable; retry after Retry-After"))
    for name in _FASTAPI_VALIDATION_SCHEMAS:
        schemas.pop(name, None)
    return document


def install(app: FastAPI) -> None:
    """Make `app.openapi()` return the document above (FastAPI caches it after the first call)."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        document = generate()
        _document_optional_sign_in(document, app.routes)
        return _document_problems(document)

    app.openapi = openapi  # type: ignore[method-assign]
