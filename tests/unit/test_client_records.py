"""The client's typed records against the runtime's own OpenAPI document: same fields, same requiredness.

The client does not import the daemon's models (the boundary), so this is what keeps the two in step:
a field the runtime adds, renames or makes optional shows up here before any caller misreads it.
"""
from __future__ import annotations

from typing import Any, cast

import pytest
from pydantic import BaseModel

from runtime.api.app import build
from runtime.client import archives, diff, ingest, push, records
from runtime.services import Services


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    # Generating the document reads the routes only; no service is called.
    return build(cast(Services, None)).openapi()


def _response_schema(doc: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    responses = doc["paths"][path][method]["responses"]
    ok = next(v for k, v in responses.items() if k.startswith("2"))
    schema = ok["content"]["application/json"]["schema"]
    if schema.get("type") == "array":
        schema = schema["items"]
    return _resolve(doc, schema)


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    return doc["components"]["schemas"][ref.rsplit("/", 1)[-1]] if ref else schema


# (record, method, path) of every route whose answer the client turns into that record.
ROUTES = [
    (records.Version, "get", "/v1/version"),
    (records.HostFeatures, "get", "/v1/sysinfo"),
    (records.Image, "get", "/v1/images"),
    (records.ContentInfo, "get", "/v1/content"),
    (records.Container, "get", "/v1/containers"),
    (records.Task, "get", "/v1/tasks"),
    (records.CreatedTask, "post", "/v1/tasks"),
    (records.Exec, "post", "/v1/tasks/{task_id}/execs/{exec_id}/start"),
    (records.CreatedExec, "post", "/v1/tasks/{task_id}/execs"),
    (records.ExitStatus, "post", "/v1/tasks/{task_id}/wait"),
    (records.ProcessIO, "get", "/v1/tasks/{task_id}/io"),
    (records.Metrics, "get", "/v1/tasks/{task_id}/metrics"),
    (records.Usage, "get", "/v1/snapshots/{snapshotter}/{key}/usage"),
    (records.RemoteDescription, "post", "/v1/images/describe"),
    (records.SearchResults, "post", "/v1/images/search"),
    (records.SnapshotInfo, "get", "/v1/snapshots/{snapshotter}/{key}"),
    (records.Mount, "get", "/v1/snapshots/{snapshotter}/{key}/mounts"),
    (ingest.IngestStatus, "post", "/v1/content/ingests"),
    (ingest.IngestStatus, "put", "/v1/content/ingests/{ref}"),
    (records.ContentInfo, "post", "/v1/content/ingests/{ref}/commit"),
    (ingest.Unpacked, "post", "/v1/images/{name}/unpack"),
    (diff.LayerDiff, "post", "/v1/diff/compare"),
    (push.LoginResult, "post", "/v1/registry/login"),
    (archives.ImportResult, "post", "/v1/images/import"),
]


@pytest.mark.parametrize("record, method, path", ROUTES, ids=[f"{m} {p}" for _, m, p in ROUTES])
def test_a_record_has_the_fields_of_its_route(openapi: dict[str, Any], record: type[BaseModel], method: str,
                                              path: str) -> None:
    schema = _response_schema(openapi, method, path)
    assert set(record.model_fields) == set(schema["properties"])
    required = {name for name, field in record.model_fields.items() if field.is_required()}
    assert required == set(schema.get("required", []))


def test_nested_records_match_too(openapi: dict[str, Any]) -> None:
    image = _response_schema(openapi, "get", "/v1/images")
    descriptor = _resolve(openapi, image["properties"]["target"])
    assert {"mediaType", "digest", "size"} <= set(descriptor["properties"])
    assert set(records.Descriptor.model_fields) == set(descriptor.get("required", []))
