"""The layering is enforced, not trusted: import-linter contracts live in setup.cfg."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_contracts_hold() -> None:
    result = subprocess.run([str(Path(sys.executable).with_name("lint-imports")),
                             str(ROOT / "setup.cfg")],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_pure_layers_load_without_flask_or_sqlalchemy() -> None:
    code = ("import sys, authgate.policy, authgate.factors, authgate.access.return_url, "
            "authgate.access.proxy_headers, authgate.core.values; "
            "bad = [m for m in ('flask', 'werkzeug', 'sqlalchemy') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_module_over_400_lines() -> None:
    long = [(p.relative_to(ROOT), n) for p in (ROOT / "authgate").rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 400]
    assert long == []


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(edges.get(child, ())))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def _import_graph() -> dict[str, set[str]]:
    import grimp

    graph = grimp.build_graph("authgate")
    return {module: {m for m in graph.find_modules_directly_imported_by(module)
                     if m.startswith("authgate.")}
            for module in graph.modules}


def test_no_import_cycle_between_modules_or_packages() -> None:
    """A cycle hides which side is the lower layer; `layers` only checks the listed ones."""
    modules = _import_graph()
    problems = _cycles(modules)
    for depth in (2, 3):  # authgate.x and authgate.x.y
        packages: dict[str, set[str]] = {}
        for source, targets in modules.items():
            a = ".".join(source.split(".")[:depth])
            for target in targets:
                b = ".".join(target.split(".")[:depth])
                if a != b and not b.startswith(a + ".") and not a.startswith(b + "."):
                    packages.setdefault(a, set()).add(b)
        problems += _cycles(packages)
    assert problems == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_function_over_40_lines_without_a_reason() -> None:
    """Functions short enough to read at once (style conv. 12). A longer one needs a
    ``# long:`` comment on its ``def`` line saying why; migrations are generated."""
    import ast

    long = []
    for path in (ROOT / "authgate").rglob("*.py"):
        if "migrations" in path.parts:
            continue
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                    and node.end_lineno is not None
                    and node.end_lineno - node.lineno + 1 > 40
                    and "# long:" not in lines[node.lineno - 1]):
                long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    assert long == []


def test_no_attribute_probing() -> None:
    """Optional capabilities are named roles checked once by the composition root (issue
    #13): ``getattr``/``hasattr`` would hide a capability the Protocols do not name."""
    found = [f"{path.relative_to(ROOT)}:{number}"
             for path in (ROOT / "authgate").rglob("*.py") if "migrations" not in path.parts
             for number, line in enumerate(path.read_text().splitlines(), 1)
             if "getattr(" in line or "hasattr(" in line]
    assert found == []
