"""The design's import directions hold (DESIGN.md): strategies see only the protocols, engines and judges know no
search, the vocabulary depends on nothing. The test reads every module's imports, top-level and inside functions."""

import ast
from pathlib import Path

PONDER = Path(__file__).resolve().parent.parent / "ponder"

# (importer, imported): an importer module under the first package may not import anything under the second
FORBIDDEN = [
    ("ponder.strategies", "ponder.backends"), ("ponder.strategies", "ponder.server"), ("ponder.strategies", "ponder.evaluation"),
    ("ponder.backends", "ponder.strategies"), ("ponder.scorers", "ponder.strategies"),
    ("ponder.tasks", "ponder.server"), ("ponder.sandbox", "ponder.strategies"), ("ponder.sandbox", "ponder.backends"),
    # training consumes the rest (rewards from the scorers, data from the traces); nothing serving a search needs it
    ("ponder.strategies", "ponder.training"), ("ponder.backends", "ponder.training"), ("ponder.server", "ponder.training"),
    ("ponder.scorers", "ponder.training"), ("ponder.evaluation", "ponder.training"),
]
VOCABULARY = {"ponder.types": {"ponder.errors"}, "ponder.errors": set(), "ponder.protocols": {"ponder.types"}}


def _module(path: Path) -> str:
    parts = path.relative_to(PONDER.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return {m for m in found if m == "ponder" or m.startswith("ponder.")}


def _under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_no_forbidden_import_direction():
    broken = []
    for path in sorted(PONDER.rglob("*.py")):
        mod = _module(path)
        for imported in _imports(path):
            for a, b in FORBIDDEN:
                if _under(mod, a) and _under(imported, b):
                    broken.append(f"{mod} imports {imported} ({a} -> {b} is forbidden)")
            if mod in VOCABULARY:
                allowed = VOCABULARY[mod]
                if not any(_under(imported, ok) for ok in allowed) and imported != mod:
                    broken.append(f"{mod} imports {imported}: the vocabulary may import only {sorted(allowed) or 'nothing'}")
    assert not broken, "\n".join(broken)


def test_the_checker_sees_an_import_inside_a_function(tmp_path):
    probe = tmp_path / "m.py"
    probe.write_text("def f():\n    from ponder.evaluation.runner import evaluate\n")
    assert "ponder.evaluation.runner" in _imports(probe)
