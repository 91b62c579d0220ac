"""Names, password rules and argon2 checks."""

from __future__ import annotations

from argon2 import PasswordHasher

from votesvc.admin.accounts import (
    PASSWORD_MAX,
    Passwords,
    check_name,
    check_new_password,
)

FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)  # the rules, not the cost


def test_names_and_new_passwords() -> None:
    assert check_name("ann.lee@union-12") is None
    assert check_name("") is not None
    assert check_name("ann lee") is not None
    assert check_name("a" * 65) is not None
    assert check_new_password("x" * 11) == "a password has at least 12 characters"
    assert check_new_password("x" * 12) is None
    assert check_new_password("x" * (PASSWORD_MAX + 1)) is not None


async def test_a_password_is_kept_as_argon2id_and_checked_off_the_loop() -> None:
    passwords = Passwords(FAST)
    stored = passwords.hash("correct horse battery")
    assert stored.startswith("$argon2id$")
    assert "correct horse battery" not in stored
    assert await passwords.check(stored, "correct horse battery")
    assert not await passwords.check(stored, "correct horse batterY")
    assert not await passwords.check(None, "")  # no account: even the empty password fails
    assert not await passwords.check("not a hash", "x")
    assert not await passwords.check(stored, "x" * (PASSWORD_MAX + 1))
    assert Passwords().hash("x" * 12).startswith("$argon2id$v=19$m=65536,t=3,p=4$")
