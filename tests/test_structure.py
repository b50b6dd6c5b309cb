"""The core's shape: no import circle between bindcore's modules, no module over the size limit, and everything a
plugin author needs importable from top-level ``bindcore``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import bindcore

ROOT = Path(bindcore.__file__).parent
MAX_LINES = 500


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(path: Path, modules: set[str]) -> set[str]:
    """bindcore modules ``path`` imports anywhere (functions included), except under ``if TYPE_CHECKING:``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    # A name imported from a package counts as that package unless it is a submodule.
    return {name for name in found if name in modules}


def _graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in ROOT.rglob("*.py") if "plugin_template" not in p.parts}
    modules = set(files)
    graph = {}
    for name, path in files.items():
        targets = _imports(path, modules) - {name}
        # Importing a.b.c runs a/__init__ and a/b/__init__ first.
        graph[name] = {parent for target in targets for parent in _parents(target, modules)} | targets
        graph[name].discard(name)
    return graph


def _parents(name: str, modules: set[str]) -> set[str]:
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts)) if ".".join(parts[:i]) in modules}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
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

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def _edges_within(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    members = set(component)
    return [f"{a} -> {b}" for a in component for b in sorted(graph[a] & members)]


def test_the_checker_finds_a_circle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circle_inside_bindcore() -> None:
    graph = _graph()
    # A package's __init__ re-exporting its submodules is not a circle of jobs: drop package → own-submodule edges.
    flat = {name: {t for t in targets if not t.startswith(name + ".")} for name, targets in graph.items()}
    cycles = _cycles(flat)
    assert not cycles, "import circles:\n" + "\n".join("  " + "; ".join(_edges_within(flat, c)) for c in cycles)


@pytest.mark.parametrize("path", sorted(p for p in ROOT.rglob("*.py") if "plugin_template" not in p.parts),
                         ids=lambda p: str(p.relative_to(ROOT.parent)))
def test_no_core_module_is_over_the_size_limit(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT.parent)} has {lines} lines (limit {MAX_LINES}): split its jobs"


PLUGIN_AUTHOR_NAMES = [
    "Modality", "ModalityConfig", "InputError", "ConfigError", "hookimpl", "PatchModality", "PatchModalityConfig",
    "SignalModality", "SignalModalityConfig",
    "PatchEncoder", "ProjectionHead", "Transformer", "fold_clips", "mean_of_clips", "Scene", "CONCEPTS",
    "concept_code", "AnchorConfig", "AnchorTowerModality", "load_modality", "tiny_anchor_config",
    "generate_scenes", "CLIP_MEAN", "CLIP_STD", "read_npy", "read_gray_image", "as_item_list", "is_path",
    "require_finite", "check_pixel_count", "describe_item",
]


@pytest.mark.parametrize("name", PLUGIN_AUTHOR_NAMES)
def test_what_a_plugin_author_needs_is_importable_from_bindcore(name: str) -> None:
    assert getattr(bindcore, name) is not None
    assert name in bindcore.__all__
