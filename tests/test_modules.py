"""Every module of the packages says its job (a docstring) and its public names (`__all__`)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
MODULES = sorted(
    p for package in ("ledger", "projections", "publisher", "cli") for p in (ROOT / package).rglob("*.py")
)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_a_module_has_a_docstring_and_all(path: Path) -> None:
    tree = ast.parse(path.read_text(), str(path))
    assert ast.get_docstring(tree), f"{path.relative_to(ROOT)}: no module docstring"
    names = {
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign | ast.AnnAssign)
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name)
    }
    assert "__all__" in names, f"{path.relative_to(ROOT)}: no __all__"


def test_the_modules_are_found() -> None:
    assert len(MODULES) > 100
