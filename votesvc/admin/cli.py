"""``votesvc admin``: the console's accounts, from the command line.

``add-user NAME --role viewer|operator``, ``list``, ``disable NAME``,
``enable NAME``, ``passwd NAME``. A password is read from the terminal (asked
twice, not echoed) or, when stdin is not a terminal, from its first line;
never from the command line, where ``ps`` and the shell's history would keep
it. ``disable`` and ``passwd`` end the account's sessions at once. Each change
writes an audit row (who: ``--by``, default ``user@host``). Times are printed
in the campaign's zone, with the offset.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from collections.abc import Awaitable, Callable

from votesvc.admin.accounts import ROLES, Passwords, check_name, check_new_password
from votesvc.campaign import Campaign, load_campaign
from votesvc.days import system_clock
from votesvc.errors import ConfigError
from votesvc.ledger.store import AuditEntry, Store, StoreUnavailable, build_store
from votesvc.ledger.store.admin import Account, AdminTables
from votesvc.ledger.times import local_iso
from votesvc.ledger.void import default_actor
from votesvc.settings import Settings

__all__ = ["add_admin_commands", "read_password"]

Body = Callable[[AdminTables, Campaign], Awaitable[int]]


def read_password() -> str:
    """A new password: asked twice on a terminal, else stdin's first line; checked."""
    if sys.stdin.isatty():
        first = getpass.getpass("New password (at least 12 characters, not shown): ")
        if getpass.getpass("The same password again: ") != first:
            raise ConfigError("the two passwords differ; nothing changed")
    else:
        first = sys.stdin.readline().rstrip("\r\n")
    why = check_new_password(first)
    if why is not None:
        raise ConfigError(f"{why}; nothing changed")
    return first


def _run(settings: Settings, body: Body) -> int:
    campaign = load_campaign(settings.campaign_path)

    async def main() -> int:
        store: Store = build_store(settings)
        try:
            await store.open()
            return await body(AdminTables(store), campaign)
        except StoreUnavailable as exc:
            print(f"votesvc: the ledger database is unavailable: {exc}", file=sys.stderr)
            return 1
        finally:
            await store.close()

    return asyncio.run(main())


async def _audit(
    tables: AdminTables, campaign: Campaign, actor: str, action: str, detail: dict[str, object]
) -> None:
    entry = AuditEntry(
        at=int(system_clock() * 1000),
        actor=actor,
        action=action,
        detail=json.dumps(detail, sort_keys=True),
        reason="",
    )
    await tables.store.record_audit(campaign.id, entry)


def _name(text: str) -> str:
    why = check_name(text)
    if why is not None:
        raise ConfigError(f"{text!r}: {why}")
    return text


def add_user(args: argparse.Namespace, settings: Settings) -> int:
    name = _name(args.name)
    password_hash = Passwords().hash(read_password())
    actor = args.by or default_actor()

    async def body(tables: AdminTables, campaign: Campaign) -> int:
        now = int(system_clock() * 1000)
        account = Account(name, args.role, password_hash, False, now, None)
        if not await tables.add_account(account):
            print(
                f"votesvc admin: {name!r} exists already (change its password with "
                "`votesvc admin passwd`); nothing changed",
                file=sys.stderr,
            )
            return 1
        await _audit(tables, campaign, actor, "add_user", {"account": name, "role": args.role})
        print(f"added {name} ({args.role}): sign in at /admin")
        return 0

    return _run(settings, body)


def list_users(args: argparse.Namespace, settings: Settings) -> int:
    async def body(tables: AdminTables, campaign: Campaign) -> int:
        tz = campaign.timezone
        accounts = await tables.accounts()
        if not accounts:
            print("no accounts: add one with `votesvc admin add-user NAME --role operator`")
            return 0
        print(f"{'name':<20} {'role':<9} {'status':<9} {'created':<30} last sign-in")
        for account in accounts:
            status = "disabled" if account.disabled else "active"
            last = local_iso(account.signed_in_at, tz) or "never"
            print(
                f"{account.name:<20} {account.role:<9} {status:<9} "
                f"{local_iso(account.created_at, tz):<30} {last}"
            )
        print(f"times in {tz.key}")
        return 0

    return _run(settings, body)


def _change(what: str) -> Callable[[argparse.Namespace, Settings], int]:
    """``disable``, ``enable`` or ``passwd``."""

    def command(args: argparse.Namespace, settings: Settings) -> int:
        name = _name(args.name)
        password_hash = Passwords().hash(read_password()) if what == "passwd" else None
        actor = args.by or default_actor()

        async def body(tables: AdminTables, campaign: Campaign) -> int:
            if password_hash is not None:
                found = await tables.set_password(name, password_hash)
            else:
                found = await tables.set_disabled(name, what == "disable")
            if not found:
                print(f"votesvc admin: no account {name!r}; nothing changed", file=sys.stderr)
                return 1
            ended = 0 if what == "enable" else await tables.end_sessions(name)
            action = {"disable": "disable_user", "enable": "enable_user"}.get(what, what)
            detail = {"account": name, "sessions_ended": ended}
            await _audit(tables, campaign, actor, action, detail)
            done = {"disable": "disabled", "enable": "enabled", "passwd": "password changed"}
            print(f"{name}: {done[what]}" + (f"; {ended} sessions ended" if ended else ""))
            return 0

        return _run(settings, body)

    return command


def add_admin_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``votesvc admin ...`` to the ``votesvc`` parser."""
    admin = commands.add_parser("admin", help="accounts of the organisers' console (/admin)")
    actions = admin.add_subparsers(dest="action", required=True, metavar="ACTION")

    def by(cmd: argparse.ArgumentParser) -> None:
        cmd.add_argument("--by", metavar="WHO", help="who does it (audit log; default user@host)")

    cmd = actions.add_parser(
        "add-user",
        help="add an account; its password is asked twice (or read from stdin's first line)",
    )
    cmd.add_argument("name", metavar="NAME")
    cmd.add_argument(
        "--role", choices=ROLES, required=True, help="viewer sees; operator also voids"
    )
    by(cmd)
    cmd.set_defaults(func=add_user, ledger="existing")

    cmd = actions.add_parser("list", help="the accounts, their role, status and last sign-in")
    cmd.set_defaults(func=list_users, ledger="existing")

    for what, text in (
        ("disable", "stop an account signing in, and end its sessions"),
        ("enable", "let a disabled account sign in again"),
        ("passwd", "set a new password (asked as for add-user), and end its sessions"),
    ):
        cmd = actions.add_parser(what, help=text)
        cmd.add_argument("name", metavar="NAME")
        by(cmd)
        cmd.set_defaults(func=_change(what), ledger="existing")
