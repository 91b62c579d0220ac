"""The Lua scripts in ``votesvc/lua``: read once, registered at start-up.

:func:`load_script` reads a script from the package the first time a process
asks for it; :func:`register_scripts` loads every script into Redis, and is
called once by each process that talks to Redis as it starts (``serve``'s
readiness check, a flusher creating its consumer groups, a ledger command).
Scripts are called by SHA (EVALSHA); a server that lost them (restarted,
failed over, SCRIPT FLUSH) answers NOSCRIPT, and the call loads them again
and retries once, which is safe because a NOSCRIPT call ran nothing.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from redis.exceptions import NoScriptError

__all__ = ["SCRIPT_NAMES", "Script", "load_script", "register_scripts"]

SCRIPT_NAMES = (
    "cast_vote",
    "ledger_ack",
    "ledger_beat",
    "ledger_group",
    "restore_shard",
    "otp_send",
    "otp_refund",
    "otp_store",
    "otp_check",
    "otp_settle",
)


@dataclass(frozen=True, slots=True)
class Script:
    name: str
    source: str
    sha: str

    async def register(self, client: Any) -> None:
        await client.script_load(self.source)

    async def __call__(
        self, client: Any, keys: Sequence[str], args: Sequence[str | int | float]
    ) -> Any:
        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            await self.register(client)
            return await client.evalsha(self.sha, len(keys), *keys, *args)


@functools.cache
def load_script(name: str) -> Script:
    """``votesvc/lua/<name>.lua``, read from the package once per process."""
    source = resources.files("votesvc").joinpath(f"lua/{name}.lua").read_text("utf-8")
    return Script(name=name, source=source, sha=hashlib.sha1(source.encode()).hexdigest())


async def register_scripts(client: Any) -> None:
    """Load every script of :data:`SCRIPT_NAMES` that Redis does not hold yet."""
    scripts = [load_script(name) for name in SCRIPT_NAMES]
    present = await client.script_exists(*(script.sha for script in scripts))
    for script, known in zip(scripts, present, strict=True):
        if not known:
            await script.register(client)
