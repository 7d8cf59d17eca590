"""The API's OpenAPI 3.1 document, made from the routes' declarations and their pydantic models' schemas."""
from __future__ import annotations

import re
from typing import Any

from pydantic import TypeAdapter

from runtime.api.routing import Route

_REF = "#/components/schemas/{model}"
_ERROR = {
    "title": "Error",
    "type": "object",
    "properties": {"error": {"type": "object", "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                             "required": ["code", "message"]}},
    "required": ["error"],
}


def _operation_id(route: Route) -> str:
    return re.sub(r"\W", "_", f"{route.handler.__name__}{route.path}") + "_" + route.method.lower()


def _parameters(route: Route) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string", "title": name.replace("_", " ").title()}}
        for name in route.path_params
    ]
    if route.query is not None:
        schema = route.query.model_json_schema()
        required = set(schema.get("required", ()))
        for name, prop in schema["properties"].items():
            param = {"name": name, "in": "query", "required": name in required, "schema": prop}
            if "description" in prop:
                param["description"] = prop["description"]
            params.append(param)
    return params


def document(routes: list[Route], title: str, version: str, description: str) -> dict[str, Any]:
    inputs: list[tuple[tuple[int, str], Any, TypeAdapter[Any]]] = []
    for i, route in enumerate(routes):
        if route.body is not None:
            inputs.append(((i, "body"), "validation", route.body.adapter))
        if route.response is not None:
            inputs.append(((i, "response"), "serialization", route.response))
    schemas, definitions = TypeAdapter.json_schemas(inputs, ref_template=_REF)
    paths: dict[str, dict[str, Any]] = {}
    for i, route in enumerate(routes):
        op: dict[str, Any] = {"tags": list(route.tags), "summary": route.handler.__name__.replace("_", " ").title(),
                              "operationId": _operation_id(route)}
        if route.handler.__doc__:
            op["description"] = route.handler.__doc__.strip()
        if params := _parameters(route):
            op["parameters"] = params
        if route.body is not None:
            op["requestBody"] = {"required": route.body.required,
                                 "content": {"application/json": {"schema": schemas[((i, "body"), "validation")]}}}
        ok: dict[str, Any] = {"description": "Successful Response"}
        if route.response is not None:
            ok["content"] = {"application/json": {"schema": schemas[((i, "response"), "serialization")]}}
        op["responses"] = {str(route.status): ok, "default": {
            "description": "Error", "content": {"application/json": {"schema": {"$ref": _REF.format(model="Error")}}}}}
        paths.setdefault(route.path, {})[route.method.lower()] = op
    components = dict(definitions.get("$defs", {}))
    components["Error"] = _ERROR
    return {"openapi": "3.1.0", "info": {"title": title, "description": description, "version": version},
            "paths": paths, "components": {"schemas": components}}
