"""The API as OpenAPI 3.1, built from the wire models (handlers/api/models.py) and served at /openapi.json."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from handlers.api.models import (
    CodeAnswer,
    CodeListAnswer,
    CodePage,
    CodeView,
    DestinationRequest,
    ErrorAnswer,
    Health,
    ListQuery,
    NotFoundAnswer,
    PosterAnswer,
    PosterApiRequest,
    QRCodeAnswer,
    QRCodeRequest,
    SceneAnswer,
    SceneView,
)

_SECURITY: list[dict[str, list[str]]] = [{"bearer": []}, {"apiKey": []}]
_MODELS: list[type[BaseModel]] = [QRCodeRequest, QRCodeAnswer, ErrorAnswer, CodeView, CodeAnswer, CodePage,
                                  CodeListAnswer, SceneView, SceneAnswer, Health, NotFoundAnswer, DestinationRequest,
                                  PosterApiRequest, PosterAnswer]


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _json(model: type[BaseModel], description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": _ref(model)}}}
    if headers:
        out["headers"] = headers
    return out


def _errors(*statuses: int) -> dict[str, Any]:
    why = {
        400: "Bad input: -1, 3001 (empty path) or 3002 (bad scene)",
        401: "1001: no API key",
        403: "1002: the key is not allowed",
        404: "-1: not found",
        409: "-1: the mini program's A/C quota is used up (use a B code)",
        429: "-1: too many requests from this address; Retry-After says when to try again",
        413: "-1: body too large",
        500: "-1: a bug of ours; msg names the request id to quote (the traceback is logged under it)",
        502: "-1: WeChat refused or failed; msg says why",
        503: "-1: still being made (Retry-After), or the server cannot keep what it would write now (its disk "
             "full or its database file gone; msg says which); send the same request again later",
    }
    headers = {
        401: {"WWW-Authenticate": {"schema": {"type": "string"}}},
        503: {"Retry-After": {"schema": {"type": "string"}}},
        429: {"Retry-After": {"schema": {"type": "string"}}},
    }
    return {str(s): _json(ErrorAnswer, why[s], headers.get(s)) for s in statuses}


def _query_parameters() -> list[dict[str, Any]]:
    schema = ListQuery.model_json_schema()
    out = []
    for field, spec in schema["properties"].items():
        spec = dict(spec)
        spec.pop("title", None)
        description = spec.pop("description", None)
        if "$ref" in spec:  # enums live in $defs: inline them
            spec = dict(schema["$defs"][spec["$ref"].rsplit("/", 1)[1]])
            spec.pop("title", None)
        elif "anyOf" in spec:
            choices = [c for c in spec["anyOf"] if c.get("type") != "null"]
            inner = choices[0]
            if "$ref" in inner:
                inner = dict(schema["$defs"][inner["$ref"].rsplit("/", 1)[1]])
                inner.pop("title", None)
            spec = {**inner, **{k: v for k, v in spec.items() if k not in ("anyOf", "default")}}
        spec.pop("default", None)
        param: dict[str, Any] = {"name": field, "in": "query", "required": False, "schema": spec}
        if description:
            param["description"] = description
        out.append(param)
    return out


def openapi_document(public_url: str = "") -> dict[str, Any]:
    """The API as OpenAPI 3.1: the schemas are the pydantic models this module answers with."""
    _, defs = models_json_schema([(m, "validation") for m in _MODELS],
                                 ref_template="#/components/schemas/{model}")
    schemas = defs.get("$defs", {})
    path_id = {"name": "code_id", "in": "path", "required": True, "description": "12 random lowercase letters/digits",
               "schema": {"type": "string", "pattern": "^[a-z0-9]{12}$"}}
    image_headers = {"ETag": {"schema": {"type": "string"}}, "Cache-Control": {"schema": {"type": "string"}}}
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "minpcode HTTP API",
            "version": "1",
            "description": "WeChat mini-program codes for other systems, with the bot's shared client, "
                           "history and quota. Every answer is {code, msg, data}: code 0 with the data, or an error "
                           "code with msg saying why.",
        },
        "paths": {
            "/api/weapp/qrcode": {"post": {
                "operationId": "makeCode",
                "summary": "A B code when a scene is given, else an A code; data is the image URL. With `type` "
                           "urllink or scheme, a link that opens the mini program from outside WeChat; data is the link",
                "security": _SECURITY,
                "requestBody": {"required": True,
                                "content": {"application/json": {"schema": _ref(QRCodeRequest)}}},
                "responses": {"200": _json(QRCodeAnswer, "0: made, or reused"),
                              **_errors(400, 401, 403, 404, 409, 413, 500, 502, 503)},
            }},
            "/api/posters": {"post": {
                "operationId": "makePoster",
                "summary": "A print-ready poster of a code (by id, or by the code's fields); rendered once, "
                           "then served from the store. Never spends A/C quota unless `sharper` is true",
                "security": _SECURITY,
                "requestBody": {"required": True,
                                "content": {"application/json": {"schema": _ref(PosterApiRequest)}}},
                "responses": {
                    "200": {"description": "0: the poster's URL in data; or its bytes when Accept names "
                                           "image/png or application/pdf", "content": {
                        "application/json": {"schema": _ref(PosterAnswer)},
                        "image/png": {"schema": {"type": "string", "format": "binary"}},
                        "application/pdf": {"schema": {"type": "string", "format": "binary"}},
                    }},
                    **_errors(400, 401, 403, 404, 409, 413, 500, 502, 503)},
            }},
            "/posters/{poster_id}.{format}": {"get": {
                "operationId": "posterFile",
                "summary": "A stored poster (PNG with its dpi, or a PDF page of the exact physical size)",
                "security": [],
                "parameters": [{"name": "poster_id", "in": "path", "required": True,
                                "schema": {"type": "string", "pattern": "^[a-z0-9]{12}$"}},
                               {"name": "format", "in": "path", "required": True,
                                "schema": {"type": "string", "enum": ["png", "pdf"]}}],
                "responses": {
                    "200": {"description": "The poster", "headers": image_headers, "content": {
                        "image/png": {"schema": {"type": "string", "format": "binary"}},
                        "application/pdf": {"schema": {"type": "string", "format": "binary"}},
                    }},
                    "404": _json(NotFoundAnswer, "No such poster"),
                },
            }},
            "/api/codes": {"get": {
                "operationId": "listCodes",
                "summary": "History, newest first",
                "security": _SECURITY,
                "parameters": _query_parameters(),
                "responses": {"200": _json(CodeListAnswer, "A page of records"),
                              **_errors(400, 401, 403, 500, 503)},
            }},
            "/api/codes/{code_id}": {"get": {
                "operationId": "getCode",
                "summary": "One record",
                "security": _SECURITY,
                "parameters": [path_id],
                "responses": {"200": _json(CodeAnswer, "The record"), **_errors(401, 403, 404, 500, 503)},
            }},
            "/api/codes/{code_id}/destination": {"post": {
                "operationId": "setDestination",
                "summary": "Re-point, pause or resume a live code (its creator or an admin); no WeChat call",
                "security": _SECURITY,
                "parameters": [path_id],
                "requestBody": {"required": True,
                                "content": {"application/json": {"schema": _ref(DestinationRequest)}}},
                "responses": {"200": _json(CodeAnswer, "The record, with its new destination"),
                              **_errors(400, 401, 403, 404, 413, 500, 503)},
            }},
            "/api/codes/{code_id}/scans.csv": {"get": {
                "operationId": "exportScans",
                "summary": "A live code's scans as CSV: time (the team's zone), destination, platform, source, "
                           "hashed visitor (never the id sent), test scan",
                "security": _SECURITY,
                "parameters": [path_id, {"name": "days", "in": "query", "required": False,
                                         "description": "Only the last N days (1 to 365); all when absent",
                                         "schema": {"type": "integer", "minimum": 1, "maximum": 365}}],
                "responses": {"200": {"description": "The scans, oldest first",
                                      "content": {"text/csv": {"schema": {"type": "string"}}}},
                              **_errors(400, 401, 403, 404)},
            }},
            "/api/scenes/{key}": {"get": {
                "operationId": "resolveScene",
                "summary": "Where a scanned key leads: stored parameters, or a live code's destination now "
                           "(called by the mini program; no API key; each live-code answer counts a scan)",
                "security": [],
                "parameters": [{"name": "key", "in": "path", "required": True,
                                "description": "`k=XXXXXXXXXX` or just the 10 characters",
                                "schema": {"type": "string", "pattern": "^(k=)?[0-9A-Za-z]{10}$"}},
                               {"name": "visitor", "in": "query", "required": False,
                                # Cut, not refused, past VISITOR_MAX (bot/live/scans.py): no maxLength.
                                "description": "An anonymous visitor id; only a keyed hash of its first 256 "
                                               "characters is kept (unique scans); a visitor stays on one page of a share",
                                "schema": {"type": "string"}},
                               # Normalised, not refused (bot/live/routes.py reported_platform): no maxLength or enum.
                               {"name": "platform", "in": "query", "required": False,
                                "description": "wx.getDeviceInfo().platform (ios, android, ohos, windows, mac, "
                                               "devtools …): chooses a route by phone and is counted; kept lower-case, "
                                               "its first 16 characters, anything else than a short word as `other`",
                                "schema": {"type": "string"}},
                               {"name": "source", "in": "query", "required": False,
                                "description": "`link` when the router page was opened from the plain-link QR (?q=); "
                                               "any other value counts as the B code",
                                "schema": {"type": "string"}}],
                "responses": {"200": _json(SceneAnswer, "The parameters"), **_errors(404, 429, 500, 503)},
            }},
            "/codes/{code_id}.png": {"get": {
                "operationId": "codeImage",
                "summary": "The image (its real type: JPEG, or PNG when transparent); the id is the capability",
                "security": [],
                "parameters": [path_id, {"name": "If-None-Match", "in": "header", "required": False,
                                         "schema": {"type": "string"}}],
                "responses": {
                    "200": {"description": "The image", "headers": image_headers, "content": {
                        "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
                        "image/png": {"schema": {"type": "string", "format": "binary"}},
                    }},
                    "304": {"description": "Not modified (If-None-Match matched the ETag)", "headers": image_headers},
                    "404": _json(NotFoundAnswer, "No such code, or it has no image"),
                },
            }},
            "/healthz": {"get": {
                "operationId": "health", "summary": "Liveness", "security": [],
                "responses": {"200": _json(Health, "Alive")},
            }},
            "/openapi.json": {"get": {
                "operationId": "openapi", "summary": "This document", "security": [],
                "responses": {"200": {"description": "OpenAPI 3.1",
                                      "content": {"application/json": {"schema": {"type": "object"}}}}},
            }},
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <key>"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
    }
    if public_url:
        doc["servers"] = [{"url": public_url}]
    return doc


__all__ = ["openapi_document"]
