"""The package's layout is its architecture (docs/architecture.md): data flows one way, from the command line to
settings, requests, parsed answers, states and output, and every import points down that flow.

Read from the source with ``ast``, so every import counts: at module level, inside functions (the lazy ones
that keep a plain run small) and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "check_k8s_health"
#: Bottom to top: a module may import its own layer and the ones before it, never one after it.
LAYERS = ("base", "model", "transport", "access", "checks", "run", "output", "command", "cli")
#: Inside a check: read is pure parsing; acquire asks and reads, judge weighs what was read.
STAGES = {"read": set(), "acquire": {"read"}, "judge": {"read"}}
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = _modules()


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, absolute module) for each import of this package or another one, relative imports resolved."""
    own = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = own.split(".")[: -node.level]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                # `from check_k8s_health.access import incluster` names a module, not an attribute.
                candidate = f"{base}.{alias.name}"
                yield node.lineno, candidate if candidate in MODULES else base


def _ours(name: str) -> bool:
    return name == "check_k8s_health" or name.startswith("check_k8s_health.")


def _layer(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in ("__main__",):
        return len(LAYERS)  # the package itself and python -m: above everything
    return LAYERS.index(parts[1])


def _edges() -> list[tuple[str, int, str]]:
    return [(module, line, target) for module, path in MODULES.items() for line, target in _imports(path)
            if _ours(target) and target != module]


def test_every_folder_is_a_layer_or_a_check() -> None:
    folders = {path.relative_to(PACKAGE).parts[0] for path in PACKAGE.rglob("*.py") if path.parent != PACKAGE}
    assert folders == set(LAYERS) - {"cli"}
    top = {path.name for path in PACKAGE.glob("*.py")}
    assert top == {"__init__.py", "__main__.py", "cli.py"}, "a new module belongs in a folder of its layer"


def test_no_import_runs_back_up() -> None:
    upward = [f"{module}:{line} imports {target}" for module, line, target in _edges()
              if target != "check_k8s_health" and _layer(target) > _layer(module)]
    assert upward == []


def test_only_the_version_is_taken_from_the_package_itself() -> None:
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "check_k8s_health":
                assert [alias.name for alias in node.names] in (["__version__"], ["cli"]), f"{module}:{node.lineno}"


def test_checks_know_only_themselves_and_what_they_share() -> None:
    crossing = []
    for module, line, target in _edges():
        mine, theirs = module.split("."), target.split(".")
        both_checks = mine[1:2] == ["checks"] and theirs[1:2] == ["checks"] and len(mine) > 3 and len(theirs) > 3
        if both_checks and theirs[2] not in (mine[2], "shared"):
            crossing.append(f"{module}:{line} imports {target}")
    assert crossing == []


def test_reading_is_pure_and_judging_does_not_ask() -> None:
    wrong = []
    for module, line, target in _edges():
        mine, theirs = module.split("."), target.split(".")
        same_check = mine[1:2] == theirs[1:2] == ["checks"] and len(mine) == len(theirs) == 4 and mine[2] == theirs[2]
        if same_check and mine[3] in STAGES and theirs[3] not in STAGES[mine[3]] | {mine[3]}:
            wrong.append(f"{module}:{line} imports {target}")
        if len(mine) == 4 and mine[1] == "checks" and mine[3] == "read" and theirs[1:2] == ["transport"] \
                and theirs[2] != "answer":
            wrong.append(f"{module}:{line} reads through {target}: reading takes text, not connections")
    assert wrong == []


@pytest.mark.parametrize("check", sorted(path.name for path in (PACKAGE / "checks").iterdir()
                                         if path.is_dir() and path.name not in ("shared", "__pycache__")))
def test_each_check_has_the_three_stages(check: str) -> None:
    assert {path.stem for path in (PACKAGE / "checks" / check).glob("*.py")} == {"__init__", *STAGES}


def test_no_cycle() -> None:
    graph: dict[str, set[str]] = {module: set() for module in MODULES}
    for module, _, target in _edges():
        if target in graph and target != "check_k8s_health":
            graph[module].add(target)
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for successor in sorted(graph[node]):
            if state.get(successor) == 1:
                raise AssertionError(" -> ".join([*path[path.index(successor):], successor]))
            if successor not in state:
                visit(successor, [*path, successor])
        state[node] = 2

    for module in graph:
        if module not in state:
            visit(module, [module])


def test_only_the_client_imports_requests() -> None:
    importers = sorted({module for module, path in MODULES.items() for _, target in _imports(path)
                        if target.split(".")[0] in ("requests", "urllib3")})
    assert importers == ["check_k8s_health.transport.client"]


def test_every_module_is_small() -> None:
    sizes = {module: len(path.read_text().splitlines()) for module, path in MODULES.items()}
    assert {module: size for module, size in sizes.items() if size > MAX_LINES} == {}


def test_every_folder_says_what_it_holds() -> None:
    for path in PACKAGE.rglob("__init__.py"):
        assert ast.get_docstring(ast.parse(path.read_text())), path.relative_to(ROOT)


def test_the_architecture_page_maps_every_folder() -> None:
    page = (ROOT / "docs" / "architecture.md").read_text()
    mapped = set(re.findall(r"^\| `check_k8s_health/([a-z/]+)/` \|", page, re.MULTILINE))
    folders = {str(path.parent.relative_to(PACKAGE)) for path in PACKAGE.rglob("__init__.py") if path.parent != PACKAGE}
    assert mapped == folders


def test_the_checks_read_from_the_bottom_up() -> None:
    """The picture the page draws is the order this test enforces."""
    page = (ROOT / "docs" / "architecture.md").read_text()
    order = re.search(r"^Layers, bottom to top: (.+)$", page, re.MULTILINE)
    assert order is not None
    assert tuple(re.findall(r"`([a-z]+)`", order.group(1))) == LAYERS
