"""The OpenAPI document stays in step with the routes, and the live API conforms to it."""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from support.webinbox import CAPTURE_ENV, Inbox, message

from mailwright.web import create_app

SPEC: dict[str, Any] = json.loads(files("mailwright.web").joinpath("openapi.json").read_text())
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def app_routes() -> set[tuple[str, str]]:
    app = create_app(None)
    return {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.method != "HEAD" and route.resource is not None  # HEAD: aiohttp's, with GET
    }


def spec_operations() -> set[tuple[str, str]]:
    return {
        (method, path)
        for path, item in SPEC["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def test_every_route_is_in_the_spec_and_back() -> None:
    assert SPEC["openapi"] == "3.1.0"
    routes = app_routes()
    assert len(routes) >= 12
    assert routes - spec_operations() == set(), "routes missing from openapi.json"
    assert spec_operations() - routes == set(), "openapi.json names routes that do not exist"


def test_every_operation_documents_its_errors() -> None:
    for path, item in SPEC["paths"].items():
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            codes = set(operation["responses"])
            assert any(code.startswith("2") for code in codes), (method, path)
            if path.startswith("/api/v1/"):
                assert {"403", "503"} <= codes, (method, path)
            if "{id}" in path:
                assert {"400", "404"} <= codes, (method, path)


def test_the_live_spec_is_the_packaged_file(inbox: Inbox) -> None:
    reply = inbox.http.get("/api/openapi.json")
    assert reply.status == 200
    assert reply.json() == SPEC


# ----- schemathesis against the live server (a bonus when it is installed) ------------------------
# Its pytest plugin (from_fixture/parametrize) does not run under our pytest; its Python API does:
# each operation's hypothesis strategy, drawn here and sent to the real server.
def test_live_api_conforms_to_its_spec(server_factory: Any) -> None:
    schemathesis = pytest.importorskip("schemathesis")
    from schemathesis import GenerationMode

    inbox = Inbox(server_factory(CAPTURE_ENV))
    inbox.send(message("Plain"))
    inbox.send(message("Rich", html="<p>hi</p>", attachments=[("a.txt", "text/plain", b"a")]))
    rich = inbox.messages()[0]["id"]
    schema = schemathesis.openapi.from_dict(SPEC)
    ran: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path == "/api/v1/events":
            continue  # never ends by itself; test_web_events.py covers it
        strategies = {
            "positive": operation.as_strategy(GenerationMode.POSITIVE),
            "negative": operation.as_strategy(GenerationMode.NEGATIVE),
        }
        if "{id}" in operation.path and operation.method != "delete":
            # Random ids are all 404s; this one exists (its parts, HTML and raw are real).
            strategies["existing"] = operation.as_strategy(path_parameters={"id": rich})
        for label, strategy in strategies.items():

            @settings(max_examples=15, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
            @given(case=strategy)
            def check(case: Any) -> None:
                case.call_and_validate(base_url=inbox.url, timeout=10)

            try:
                check()
            except Unsatisfiable:
                assert label == "negative", operation.path
                continue  # nothing to make invalid: the operation takes no input
            ran.append(f"{label} {operation.method.upper()} {operation.path}")
    assert sum(r.startswith("positive") for r in ran) == len(spec_operations()) - 1, ran
    assert sum(r.startswith("existing") for r in ran) == 4, ran
