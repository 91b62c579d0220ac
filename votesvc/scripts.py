"""The Lua scripts in ``votesvc/lua``: read once, registered at start-up.

Scripts are called by SHA (EVALSHA); a server that lost them (restarted,
failed over, SCRIPT FLUSH) answers NOSCRIPT, and the call loads them again
and retries once, which is safe because a NOSCRIPT call ran nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from redis.exceptions import NoScriptError

__all__ = ["Script", "load_script"]


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


def load_script(name: str) -> Script:
    """Read ``votesvc/lua/<name>.lua`` from the package."""
    source = resources.files("votesvc").joinpath(f"lua/{name}.lua").read_text("utf-8")
    return Script(name=name, source=source, sha=hashlib.sha1(source.encode()).hexdigest())
