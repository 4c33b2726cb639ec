"""The composition root is the one place that picks backends (issue #13 item 1, review §1.1).

Use cases take storage Protocols; only ``authgate/composition/`` may import or build a
``Sql*`` class (``authgate/storage/`` defines them). The scan reads the source (AST), so an
import inside a function is caught too.
"""
from __future__ import annotations

import ast
from pathlib import Path

from authgate.admin.actions import AdminActions
from authgate.composition.root import Services

PACKAGE = Path(__file__).resolve().parent.parent / "authgate"
MAY_BUILD = ("composition/", "storage/")

def _sql_uses(tree: ast.AST) -> list[str]:
    """Imports of ``authgate.storage.sql_*`` modules and any ``Sql*`` name imported or used."""
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if (node.module or "").startswith("authgate.storage.sql_"):
                found.append(f"line {node.lineno}: from {node.module} import ...")
            found += [f"line {node.lineno}: import {a.name}" for a in node.names
                      if _is_sql_class(a.name)]
        elif isinstance(node, ast.Import):
            found += [f"line {node.lineno}: import {a.name}" for a in node.names
                      if a.name.startswith("authgate.storage.sql_")]
        elif isinstance(node, ast.Name | ast.Attribute):
            name = node.id if isinstance(node, ast.Name) else node.attr
            if _is_sql_class(name):
                found.append(f"line {node.lineno}: {name}")
    return found


def _is_sql_class(name: str) -> bool:
    return name.startswith("Sql") and name[3:4].isupper()


def offenders() -> dict[str, list[str]]:
    result: dict[str, list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith(MAY_BUILD):
            continue
        uses = _sql_uses(ast.parse(path.read_text(), filename=str(path)))
        if uses:
            result[rel] = uses
    return result


def test_only_the_composition_root_touches_sql_classes() -> None:
    assert offenders() == {}


def test_the_scan_finds_an_import_and_a_construction() -> None:
    source = ("from authgate.storage.sql_sessions import SqlSessionStore\n"
              "def f(engine):\n    return SqlSessionStore(engine)\n")
    assert len(_sql_uses(ast.parse(source))) == 3  # the import, its name, the call


def test_admin_actions_and_refresher_are_built_once_at_start(services: Services) -> None:
    assert isinstance(services.admin, AdminActions)
    assert services.admin.sessions is services.sessions and services.admin.mfa is services.mfa
    assert services.sessions.refresher is not None


def test_the_admin_views_use_the_actions_built_at_start(app, services: Services) -> None:  # type: ignore[no-untyped-def]
    from authgate.web.admin import actions

    with app.test_request_context("/admin"):
        assert actions() is services.admin
