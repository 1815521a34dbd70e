"""A bounded, reproducible property-based run against the server's OpenAPI document.

Schemathesis generates requests for every operation, valid ones and (in a second run)
invalid ones, and sends them to the app in process: no request may get a server error.
The registry is seeded first, and generated path parameters are often swapped for names
that exist, so requests reach existing models, versions, tags, aliases and blobs and not
only 404s.

Nothing is excluded: /verify and /gc re-read a blob store of three small blobs here.
Operations that destroy state (deletes, gc, replacing the lifecycle) run after the
others, so that the seeded resources are still there while the rest are exercised.

Schemathesis's own pytest integration (``schemathesis.pytest.from_fixture``) relies on
pytest internals that pytest 9 no longer has; each operation is driven by Hypothesis
directly instead, with a fixed example budget and derandomized generation.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import APIOperation, BaseSchema, Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import response_schema_conformance

from modelreg.client import RemoteRegistry

if TYPE_CHECKING:  # mypy names this folder's modules http.*; pytest imports them flat
    from http.httpkit import make_app, remote, sha256
else:
    from httpkit import make_app, remote, sha256

BLOB = b"fuzz blob"
# Values that name something the seeded registry holds, per path parameter.
KNOWN: dict[str, list[str]] = {
    "name": ["fraud"],
    "selector": ["1", "2", "@latest", "@staging", "@champion"],
    "alias": ["champion"],
    "key": ["team"],
    "sha256": [sha256(BLOB)],
}
# Response conformance is cheap and passes; status-code conformance does not apply: the
# document lists FastAPI's default 422 and none of the 4xx answers the server gives.
CHECKS = [not_a_server_error, response_schema_conformance]
SETTINGS = settings(
    max_examples=20,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def seed(reg: RemoteRegistry, root: Path) -> None:
    """Model 'fraud' with two versions, a stage, an alias and tags; one loose blob."""
    for n in (1, 2):
        folder = root / f"v{n}"
        folder.mkdir(parents=True)
        (folder / "model.pkl").write_bytes(f"weights {n}".encode())
        reg.register("fraud", folder, metrics={"auc": 0.8 + n / 100}, params={"depth": n})
    reg.set_tags("fraud", {"team": "risk"})
    reg.set_tags("fraud/1", {"team": "risk"})
    reg.transition("fraud/2", "staging")
    reg.set_alias("fraud", "champion", 1)
    blob = root / "blob.bin"
    blob.write_bytes(BLOB)
    reg.blobs.upload(blob, sha256(BLOB), len(BLOB), None)


def known_path_parameters(_context: Any, parameters: dict[str, Any] | None) -> Any:
    """Half of the time, path parameters that name seeded resources."""
    known = {k: st.sampled_from(KNOWN[k]) for k in parameters or {} if k in KNOWN}
    if parameters is None or not known:
        return st.just(parameters)
    return st.one_of(
        st.just(parameters), st.fixed_dictionaries(known).map(lambda v: {**parameters, **v})
    )


def short_waits(context: Any, query: dict[str, Any] | None) -> dict[str, Any] | None:
    """Long polls and event streams hold a request up to ``wait`` seconds: keep generated
    waits short (and set one for the stream, whose default is minutes), values that are
    not numbers as generated."""
    operation = getattr(context, "operation", None)
    if operation is None or not operation.path.startswith("/api/v1/events"):
        return query
    query = dict(query or {})
    wait = query.get("wait", 0.1)
    if isinstance(wait, int | float) and not isinstance(wait, bool) and wait > 0:
        query["wait"] = min(wait, 0.1)
    elif "wait" not in query:
        query["wait"] = 0.1
    return query


def destroys_state(operation: APIOperation[Any, Any, Any, Any]) -> bool:
    return operation.method.upper() == "DELETE" or operation.path in (
        "/api/v1/gc",
        "/api/v1/lifecycle",
    )


@pytest.fixture
def api(tmp_path: Path) -> Iterator[BaseSchema]:
    app: FastAPI = make_app(tmp_path / "server")
    with remote(app) as reg:
        seed(reg, tmp_path / "seed")
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
    schema.hook("flatmap_path_parameters")(known_path_parameters)
    schema.hook("map_query")(short_waits)
    yield schema
    # Schemathesis ran the app's lifespan, whose shutdown closes the registry.
    shutdown_lifespans()
    app.state.registry.close()


@pytest.mark.parametrize("mode", list(GenerationMode), ids=lambda m: str(m.value))
def test_no_request_gets_a_server_error(api: BaseSchema, mode: GenerationMode) -> None:
    results = list(api.get_all_operations())
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) == len(results), "the OpenAPI document has invalid operations"
    assert len(operations) >= 30
    failures: list[str] = []
    for operation in sorted(operations, key=destroys_state):

        @SETTINGS
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(case: Case[Any]) -> None:
            case.call_and_validate(checks=CHECKS)

        try:
            run()
        except Unsatisfiable:
            # Nothing in this operation can be made invalid (no parameters, or only
            # free-form strings): negative mode has nothing to send.
            assert mode is GenerationMode.NEGATIVE, operation.label
        except BaseException as exc:  # schemathesis reports failures as an exception group
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)
