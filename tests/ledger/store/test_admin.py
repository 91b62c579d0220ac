"""The console's tables (accounts, sessions, wrong passwords) on both stores."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ledger.store.test_stores import run_sql
from tests.ledger_fixtures import ledger_settings
from votesvc.ledger.store import Store, build_store
from votesvc.ledger.store.admin import Account, AdminSession, AdminTables
from votesvc.ledger.store.schema import MIGRATIONS


def account(name: str, role: str = "viewer", *, disabled: bool = False) -> Account:
    return Account(name, role, f"$argon2id$hash-of-{name}", disabled, 1_000, None)


async def test_accounts_are_added_once_changed_and_listed(store: Store) -> None:
    tables = AdminTables(store)
    assert not await tables.any_active()
    assert await tables.add_account(account("bob", "operator"))
    assert not await tables.add_account(account("bob"))  # the name is taken: unchanged
    assert await tables.add_account(account("ann", disabled=True))
    assert [a.name for a in await tables.accounts()] == ["ann", "bob"]
    assert await tables.any_active()
    bob = await tables.account("bob")
    assert bob == account("bob", "operator")
    assert await tables.set_password("bob", "$argon2id$new")
    assert await tables.set_disabled("bob", True)
    await tables.note_signin("bob", 5_000)
    changed = await tables.account("bob")
    assert changed is not None
    assert (changed.password_hash, changed.disabled, changed.signed_in_at) == (
        "$argon2id$new",
        True,
        5_000,
    )
    assert not await tables.any_active()
    assert not await tables.set_disabled("nobody", True)
    assert await tables.account("nobody") is None


async def test_sessions_are_found_touched_and_ended(store: Store) -> None:
    tables = AdminTables(store)
    for n in range(3):
        await tables.add_session(AdminSession(f"h{n}", "ann" if n < 2 else "bob", 10, 10))
    await tables.touch_session("h0", 99)
    assert await tables.session("h0") == AdminSession("h0", "ann", 10, 99)
    await tables.end_session("h0")
    assert await tables.session("h0") is None
    assert await tables.end_sessions("ann") == 1
    assert await tables.session("h2") is not None
    assert await tables.end_sessions("bob", older_than=5) == 0
    assert await tables.end_sessions("bob", older_than=11) == 1


async def test_wrong_passwords_count_per_account_and_prefix_and_are_forgotten(
    store: Store,
) -> None:
    tables = AdminTables(store)
    for at in (100, 200, 300):
        await tables.add_failure("ann", "net-a", at, forget_before=0)
    await tables.add_failure("ann", "net-b", 300, forget_before=0)
    await tables.add_failure("bob", "net-a", 300, forget_before=0)
    assert await tables.failures("ann", "net-a", since=150) == [200, 300]
    await tables.add_failure("ann", "net-a", 400, forget_before=250)  # 100 and 200 go
    assert await tables.failures("ann", "net-a", since=0) == [300, 400]
    await tables.clear_failures("ann", "net-a")
    assert await tables.failures("ann", "net-a", since=0) == []
    assert await tables.failures("ann", "net-b", since=0) == [300]


async def test_migration_4_adds_the_console_tables_to_an_earlier_ledger(
    tmp_path: Path, database_url: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = ledger_settings(tmp_path, database_url)
    with monkeypatch.context() as patch:  # a ledger of the release before the console
        earlier = tuple(m for m in MIGRATIONS if m.version < 4)
        patch.setattr("votesvc.ledger.store.sqlite.MIGRATIONS", earlier)
        patch.setattr("votesvc.ledger.store.postgres.MIGRATIONS", earlier)
        ledger = build_store(settings)
        await ledger.open()
        await ledger.close()
    await run_sql(
        settings,
        "INSERT INTO audit_log (campaign, at, actor, action, detail, reason)"
        " VALUES ('c', 1, 'ops', 'export', '{}', '')",
    )
    ledger = build_store(settings)
    await ledger.open()  # applies migration 4
    try:
        assert 4 in [m.version for m in MIGRATIONS]
        tables = AdminTables(ledger)
        assert await tables.add_account(account("ann"))
        assert len(await ledger.audit_log("c")) == 1  # what was there stays
    finally:
        await ledger.close()
