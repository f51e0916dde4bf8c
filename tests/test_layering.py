"""The layering and the no-cycle rule of [tool.importlinter] hold (also run by `make lint`).

Here too so that a plain `pytest` enforces them: a rule only a review remembers is soon broken.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run([str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def module_cycles(package: str) -> list[list[str]]:
    """Groups of modules of `package` that import each other round in a loop (Tarjan's strongly connected components)."""
    import grimp  # import-linter's own import graph

    graph = grimp.build_graph(package, cache_dir=None)
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in sorted(graph.modules)}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while (w := stack.pop()) != v:
                component.append(w)
            if component:
                cycles.append(sorted([v, *component]))

    for module in edges:
        if module not in index:
            visit(module)
    return cycles


def test_no_module_imports_itself_through_others() -> None:
    # what acyclic_siblings checks between sibling packages, here between single modules: a module
    # whose imports lead back to it (collector/app.py and the 12 route modules, agent.py and
    # localapi.py before) cannot be understood, tested nor imported alone
    for package in ("edge_agent", "drivers", "collector", "simulators", "citygate_wire"):
        assert module_cycles(package) == [], package
