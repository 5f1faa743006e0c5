"""
The shape of the tree, as the layout promises it: no import cycles (lazy
imports included), small modules, ``__init__`` files that only re-export,
private modules used only inside their package, and Twisted's private names
in netproto/_twisted.py alone.
"""

from __future__ import annotations

import ast
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

ROOT = Path(__file__).resolve().parent.parent / "netproto"
MAX_LINES = 600

# Twisted internals that must never be touched outside the seam.
TWISTED_PRIVATE = {
    "_tempDataLen",
    "_tempDataBuffer",
    "_fromListeningDescriptor",
    "_sddaemon",
    "_SystemdParser",
    "_bindSocket",
    "_connectToProtocol",
    "_writeDisconnected",
    "_preexistingSocket",
    "_realPortNumber",
    "_sslverify",
}
SEAM = "netproto._twisted"


def module_name(path: Path) -> str:
    """``netproto.ping._codec`` for netproto/ping/_codec.py, ``netproto.ping`` for its __init__."""
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}
TREES = {name: ast.parse(path.read_text()) for name, path in MODULES.items()}


def package_of(name: str) -> str:
    """The package a module belongs to (itself for an __init__)."""
    return name if MODULES[name].name == "__init__.py" else name.rpartition(".")[0]


def imports(name: str) -> list[tuple[str, list[str], int]]:
    """(module imported, names taken from it, line) for every import of *name*, lazy ones too."""
    found = []
    base = package_of(name)
    for node in ast.walk(TREES[name]):
        if isinstance(node, ast.ImportFrom):
            source = node.module or ""
            if node.level:
                anchor = base
                for _ in range(node.level - 1):
                    anchor = anchor.rpartition(".")[0]
                source = f"{anchor}.{source}" if node.module else anchor
            found.append((source, [a.name for a in node.names], node.lineno))
        elif isinstance(node, ast.Import):
            found.extend((a.name, [], node.lineno) for a in node.names)
    return found


def edges(name: str) -> set[str]:
    """The netproto modules *name* imports (a submodule imported by name counts as itself)."""
    out = set()
    for source, names, _ in imports(name):
        for taken in names or [""]:
            target = f"{source}.{taken}" if f"{source}.{taken}" in MODULES else source
            if target in MODULES and target != name:
                out.add(target)
    return out


def private_scope(module: str) -> str | None:
    """
    The package inside which *module* may be imported, if it is private: the
    package holding ``netproto.lookup._names`` is ``netproto.lookup``. A
    private package's face (``netproto._service``) is open to all of netproto.
    """
    parts = module.split(".")
    if MODULES.get(module) is not None and MODULES[module].name == "__init__.py":
        return None if not parts[-1].startswith("_") else "netproto"
    if parts[-1].startswith("_") and not parts[-1].startswith("__"):
        return ".".join(parts[:-1])
    return None


class LayoutTests(SynchronousTestCase):
    """The tree reads like the architecture."""

    def test_no_import_cycles(self) -> None:
        """No module reaches itself through imports, static or inside functions."""
        graph = {name: edges(name) for name in MODULES}
        for start in graph:
            seen, todo = set(), list(graph[start])
            while todo:
                current = todo.pop()
                self.assertNotEqual(current, start, f"import cycle through {start}")
                if current not in seen:
                    seen.add(current)
                    todo.extend(graph[current])

    def test_small_modules(self) -> None:
        """No module passes MAX_LINES lines."""
        for name, path in MODULES.items():
            lines = len(path.read_text().splitlines())
            self.assertLessEqual(lines, MAX_LINES, f"{name} has {lines} lines")

    def test_top_level(self) -> None:
        """At most 16 top-level modules (one per inetd service, as users import them:
        daytime, echo, discard, chargen, time, qotd); the capabilities of several are packages."""
        top = [p for p in ROOT.glob("*.py")]
        self.assertLessEqual(len(top), 16, sorted(p.name for p in top))
        for package in ("ping", "traceroute", "head", "lookup", "cli", "_service", "_listen"):
            self.assertTrue((ROOT / package / "__init__.py").exists(), package)

    def test_init_only_reexports(self) -> None:
        """An __init__.py holds a docstring, imports, __all__ (and the version), nothing else."""
        for name, path in MODULES.items():
            if path.name != "__init__.py":
                continue
            body = TREES[name].body
            for index, node in enumerate(body):
                if index == 0 and isinstance(node, ast.Expr):
                    continue  # the docstring
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    continue
                if isinstance(node, ast.Assign) and all(
                    isinstance(t, ast.Name) and t.id in ("__all__", "__version__")
                    for t in node.targets
                ):
                    continue
                self.fail(f"{name} line {node.lineno}: an __init__ only re-exports")

    def test_private_stays_private(self) -> None:
        """No private module, and no ``_name``, is imported from outside its package."""
        for name in MODULES:
            mine = package_of(name)
            for source, names, line in imports(name):
                if not source.startswith("netproto"):
                    continue
                targets = [source]
                targets += [f"{source}.{n}" for n in names if f"{source}.{n}" in MODULES]
                for target in targets:
                    scope = private_scope(target)
                    if scope is not None:
                        self.assertTrue(
                            mine == scope or mine.startswith(scope + "."),
                            f"{name}:{line} imports private {target}",
                        )
                if source in MODULES and MODULES[source].name != "__init__.py":
                    home = package_of(source)
                    for taken in names:
                        if taken.startswith("_") and f"{source}.{taken}" not in MODULES:
                            self.assertTrue(
                                mine == home or mine.startswith(home + "."),
                                f"{name}:{line} imports {taken} from {source}",
                            )

    def test_twisted_private_names_in_the_seam_only(self) -> None:
        """Twisted's private names appear in netproto/_twisted.py and nowhere else."""
        for name, tree in TREES.items():
            if name == SEAM:
                continue
            for node in ast.walk(tree):
                used = None
                if isinstance(node, ast.Attribute):
                    used = node.attr
                elif isinstance(node, ast.Name):
                    used = node.id
                elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    used = node.name
                elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("twisted"):
                    private = [a.name for a in node.names if a.name.startswith("_")]
                    self.assertFalse(private, f"{name}:{node.lineno} imports {private}")
                    self.assertNotIn("._", node.module or "", f"{name}:{node.lineno}")
                self.assertNotIn(used, TWISTED_PRIVATE, f"{name}:{getattr(node, 'lineno', '?')}")
