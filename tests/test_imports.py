"""The one import direction: the ledger side reads what the vote path wrote, never the reverse."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "votesvc"
VOTE_PATH = (
    "hotpath",
    "api",
    "votes",
    "tally",
    "sse",
    "clientip",
    "phones",
    "keys",
    "campaign",
    "days",
    "settings",
    "entry",
    "meta",
    "redismemory",
    "tokens",
    "keyring",
    "verification",
    "verify_api",
    "otp",
    "pow",
    "sms",
)


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, by its absolute dotted name."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import"
            assert node.module is not None
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_no_vote_path_module_imports_the_ledger() -> None:
    offenders = {
        name: sorted(m for m in imported_modules(PACKAGE / f"{name}.py") if _is_ledger(m))
        for name in VOTE_PATH
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_the_check_sees_a_ledger_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("from votesvc import ledger\nfrom votesvc.ledger.store import Store\n")
    assert {m for m in imported_modules(module) if _is_ledger(m)} == {
        "votesvc.ledger",
        "votesvc.ledger.store",
        "votesvc.ledger.store.Store",
    }


def _is_ledger(module: str) -> bool:
    return module == "votesvc.ledger" or module.startswith("votesvc.ledger.")
