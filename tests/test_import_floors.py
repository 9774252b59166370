"""The packages stand on floors (docs/architecture.md): nothing in pool/ imports a package on a
higher floor, no modules import each other in a circle, and the lower floors import none of the
libraries that belong higher up (the sans-IO stratum core knows no Redis, GeoIP or HTTP).

Read from the source with ast, so TYPE_CHECKING blocks and imports inside functions count too; and read
again by grimp (a second, independent import graph: the issue's "no circle, no upward arrow")."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]

# Every top-level package or module of pool/ has a floor. A new one needs a line here.
FLOORS = {
    "pool": 1, "pool.config": 1, "pool.native": 1, "pool.bitcoin": 1, "pool.aio": 1, "pool.json_depth": 1,
    "pool.chain": 2,
    "pool.stratum": 3,
    "pool.shares": 4, "pool.money": 4,
    "pool.geo": 5, "pool.cluster": 5,
    "pool.admin": 6,
    "pool.bus": 6,
    "pool.app": 7, "pool.admin_wiring": 7, "pool.parts": 7, "pool.reload": 7, "pool.cli": 7, "pool.runner": 7,
    "pool.sim": 7,
}

# Libraries a package must not know (architecture.md, "must not know").
FORBIDDEN = {
    "pool.config": {"redis", "aiohttp", "asyncpg", "geoip2", "maxminddb"},
    "pool.bitcoin": {"redis", "aiohttp", "asyncpg", "geoip2", "maxminddb"},
    "pool.chain": {"redis", "asyncpg", "geoip2", "maxminddb"},
    "pool.stratum": {"redis", "aiohttp", "asyncpg", "geoip2", "maxminddb"},
    "pool.shares": {"aiohttp", "geoip2", "maxminddb"},
}

def modules(root: Path) -> dict[str, Path]:
    found = {}
    for path in sorted((root / "pool").rglob("*.py")):
        name = ".".join(path.relative_to(root).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def imports(mods: dict[str, Path]) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(module -> pool modules it imports, module -> top-level names of the other libraries)."""
    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    edges: dict[str, set[str]] = {m: set() for m in mods}
    libraries: dict[str, set[str]] = {m: set() for m in mods}
    for module, path in mods.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                names = [base] + [f"{base}.{alias.name}" for alias in node.names]
            else:
                continue
            for name in names:
                if name.split(".")[0] != "pool":
                    libraries[module].add(name.split(".")[0])
                    continue
                target = resolve(name)
                if target is None or target == module:
                    continue
                if mods[target].name == "__init__.py" and module.startswith(target + "."):
                    continue          # a module using its own package's face is no circle
                edges[module].add(target)
    return edges, libraries


def circles(edges: dict[str, set[str]]) -> list[frozenset[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    for start in edges:
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(frozenset(component))
    return found


def floor_of(module: str) -> tuple[str, int | None]:
    top = ".".join(module.split(".")[:2])
    return top, FLOORS.get(top)


MODS = modules(ROOT)
EDGES, LIBRARIES = imports(MODS)


def test_every_package_has_a_floor() -> None:
    missing = sorted({floor_of(m)[0] for m in MODS if floor_of(m)[1] is None})
    assert not missing, f"give these a floor in FLOORS (tests/test_import_floors.py): {missing}"


def upward_imports(edges: dict[str, set[str]]) -> list[str]:
    upward = []
    for module, targets in edges.items():
        floor = floor_of(module)[1]
        for target in targets:
            target_floor = floor_of(target)[1]
            if floor is not None and target_floor is not None and target_floor > floor:
                upward.append(f"{module} (floor {floor}) imports {target} (floor {target_floor})")
    return sorted(upward)


def test_nothing_imports_upward() -> None:
    upward = upward_imports(EDGES)
    assert not upward, "\n".join(upward)


def test_no_import_circles() -> None:
    found = [sorted(c) for c in circles(EDGES)]
    assert not found, f"import circles: {found}"


def test_no_two_packages_import_each_other() -> None:
    pairs: set[tuple[str, str]] = set()
    for module, targets in EDGES.items():
        for target in targets:
            a, b = floor_of(module)[0], floor_of(target)[0]
            if a != b:
                pairs.add((a, b))
    both = sorted({tuple(sorted(p)) for p in pairs if (p[1], p[0]) in pairs})
    assert both == []


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_lower_floors_do_not_know_higher_libraries(package: str) -> None:
    used = {f"{module}: {library}" for module, libraries in LIBRARIES.items()
            if module == package or module.startswith(package + ".")
            for library in libraries & FORBIDDEN[package]}
    assert not used, sorted(used)


def test_the_walker_finds_a_circle_and_an_upward_import(tmp_path: Path) -> None:
    """The checks can fail: a made-up tree with one circle and one upward import."""
    (tmp_path / "pool" / "stratum").mkdir(parents=True)
    (tmp_path / "pool" / "__init__.py").write_text("")
    (tmp_path / "pool" / "stratum" / "__init__.py").write_text("")
    (tmp_path / "pool" / "stratum" / "a.py").write_text("from pool.stratum import b\n")
    (tmp_path / "pool" / "stratum" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pool.stratum.a import X\n")
    (tmp_path / "pool" / "stratum" / "c.py").write_text("def f():\n    from pool.admin import routes\n")
    (tmp_path / "pool" / "admin").mkdir()
    (tmp_path / "pool" / "admin" / "__init__.py").write_text("")
    (tmp_path / "pool" / "admin" / "routes.py").write_text("import redis\n")
    edges, libraries = imports(modules(tmp_path))
    assert circles(edges) == [frozenset({"pool.stratum.a", "pool.stratum.b"})]
    assert edges["pool.stratum.c"] == {"pool.admin", "pool.admin.routes"}      # inside a function
    assert upward_imports(edges) == ["pool.stratum.c (floor 3) imports pool.admin (floor 6)",
                                     "pool.stratum.c (floor 3) imports pool.admin.routes (floor 6)"]
    assert libraries["pool.admin.routes"] == {"redis"}


def grimp_findings(package: str, floors: dict[str, int]) -> tuple[list[str], list[tuple[str, str]]]:
    """grimp's graph of `package`: (imports from a floor to a higher one, module edges on a circle)."""
    graph = grimp.build_graph(package, exclude_type_checking_imports=False)
    by_floor: dict[int, list[str]] = {}
    for name, floor in floors.items():
        if name != package and name in graph.modules:
            by_floor.setdefault(floor, []).append(name)
    layers = [grimp.Layer(*sorted(by_floor[floor]), independent=False) for floor in sorted(by_floor, reverse=True)]
    upward = sorted(f"{d.importer} -> {d.imported}: {head} -> {tail}"
                    for d in graph.find_illegal_dependencies_for_layers(layers=layers)
                    for route in d.routes for head in route.heads for tail in route.tails)
    circular = sorted((a, b) for a in graph.modules for b in graph.find_modules_directly_imported_by(a)
                      if graph.chain_exists(importer=b, imported=a))
    return upward, circular


def test_grimp_sees_no_upward_import_and_no_circle() -> None:
    upward, circular = grimp_findings("pool", FLOORS)
    assert upward == []
    assert circular == []


def test_grimp_finds_a_planted_circle_and_upward_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "floorsdemo"
    for package in ("", "low", "high"):
        (root / package).mkdir(exist_ok=True)
        (root / package / "__init__.py").write_text("")
    (root / "low" / "a.py").write_text("from floorsdemo.low import b\n")
    (root / "low" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from floorsdemo.low.a import X\n")
    (root / "low" / "c.py").write_text("def f():\n    from floorsdemo.high import d\n")
    (root / "high" / "d.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    upward, circular = grimp_findings("floorsdemo", {"floorsdemo.low": 1, "floorsdemo.high": 2})
    assert upward == ["floorsdemo.low -> floorsdemo.high: floorsdemo.low.c -> floorsdemo.high.d"]   # inside a function
    assert circular == [("floorsdemo.low.a", "floorsdemo.low.b"), ("floorsdemo.low.b", "floorsdemo.low.a")]
    sys.modules.pop("floorsdemo", None)


def test_benchmarks_import_no_test_helpers() -> None:
    """Benchmarks stand on pool/ (pool/sim holds the real servers and job sources they share with
    the tests), not on tests/: a helper changed for a test must not change a benchmark's figures."""
    found = []
    for path in sorted((ROOT / "benchmarks").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            found += [f"{path.name}: {name}" for name in names if name.split(".")[0] == "tests"]
    assert not found, found
