"""The package's structure: imports run one way (no module imports back into a module that
imports it, directly or not) and the trained model knows nothing of training.

Imports are read from the source with :mod:`ast` (imports inside functions included, since a
deferred import is still a dependency; those under ``if TYPE_CHECKING:`` left out, since they
never run), so the check needs no import side effects.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "alsmf"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The alsmf modules ``path`` imports (importing a package's name counts as its
    ``__init__``; every import also runs the parent packages' ``__init__``, not counted)."""
    found = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for block in ast.walk(tree):  # imports for type annotations only are not dependencies
        if isinstance(block, ast.If) and ast.unparse(block.test) == "TYPE_CHECKING":
            block.body = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # ``from alsmf import store`` depends on the module alsmf.store; ``from
            # alsmf.model import MFModel`` on alsmf.model
            names = [f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in known
                     else node.module for alias in node.names]
        else:
            continue
        found |= {name for name in names if name in known}
    return found


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    known = set(paths)
    return {name: imports_of(path, known) - {name} for name, path in paths.items()}


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for target in graph[todo.pop()]:
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def is_package_parent(name: str, other: str) -> bool:
    """A package's ``__init__`` importing its own submodules is how packages export."""
    return other.startswith(name + ".")


def test_no_module_imports_back_into_one_that_imports_it():
    graph = import_graph()
    # packages re-export their submodules; the edge from a package to its own submodule is
    # not a dependency of the package's code on the rest of alsmf
    graph = {name: {t for t in targets if not is_package_parent(name, t)}
             for name, targets in graph.items()}
    circles = sorted(name for name in graph if name in reachable(graph, name))
    assert circles == [], f"modules in an import circle: {circles}"


def test_the_model_and_its_file_format_know_nothing_of_training():
    graph = import_graph()
    for module in ("alsmf.model", "alsmf.store"):
        training = sorted(name for name in reachable(graph, module)
                          if name.startswith(("alsmf.training", "alsmf.models.als",
                                              "alsmf.models.bayes", "alsmf.baselines",
                                              "alsmf.distributed", "alsmf.cli",
                                              "alsmf.serve")))
        assert training == [], f"{module} reaches {training}"


WEB_LIBRARIES = ("starlette", "uvicorn", "httptools", "uvloop", "anyio")


def test_only_the_service_imports_the_web_libraries():
    """The service's package is the only user of the web libraries, and only the serve
    command imports the service: the model and the other commands never load them."""
    for path in PACKAGE.rglob("*.py"):
        name = module_name(path)
        if name.startswith("alsmf.serve"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top_level = {alias.name.split(".")[0] for node in tree.body
                     if isinstance(node, ast.Import) for alias in node.names}
        top_level |= {node.module.split(".")[0] for node in tree.body
                      if isinstance(node, ast.ImportFrom) and node.module}
        web = top_level & set(WEB_LIBRARIES)
        assert not web, f"{name} imports {web} when it is imported"
    graph = import_graph()
    users = sorted(name for name, targets in graph.items() if not name.startswith("alsmf.serve")
                   and any(t.startswith("alsmf.serve") for t in targets))
    assert users == ["alsmf.cli.serve"]


def test_the_command_line_loads_no_web_library():
    import subprocess
    import sys

    code = ("import sys, alsmf.cli; "
            f"print(sorted(set(sys.modules) & set({WEB_LIBRARIES!r})))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert loaded.stdout.strip() == "[]"
