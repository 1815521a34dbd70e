"""Every HTTP route is documented in docs/http-api.md, and the docs name no stale ones."""

from __future__ import annotations

import re
from pathlib import Path

from modelreg.config import Config
from modelreg.server.app import create_app

DOC = Path(__file__).resolve().parents[1] / "docs" / "http-api.md"


def _routes(tmp_path: Path) -> set[str]:
    app = create_app(Config.load(home=str(tmp_path)))
    try:
        # The OpenAPI document is the route table clients see.
        paths = app.openapi()["paths"]
        return {f"{method.upper()} {path}" for path, ops in paths.items() for method in ops}
    finally:
        app.state.registry.close()


def test_every_route_is_documented(tmp_path: Path) -> None:
    routes = _routes(tmp_path)
    documented = set(re.findall(r"^\| `([A-Z]+ /[^`]*)`", DOC.read_text(), re.MULTILINE))
    assert len(routes) > 25
    assert sorted(routes - documented) == []
    assert sorted(documented - routes) == []
