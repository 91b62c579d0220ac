"""deploy/Dockerfile read as the builder reads it: its stages and what they copy."""

from __future__ import annotations

import shlex

from tests.deploy.tools import DEPLOY

__all__ = ["DOCKERFILE", "copied_sources", "instructions", "stages"]

DOCKERFILE = DEPLOY / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined."""
    joined = DOCKERFILE.read_text().replace("\\\n", " ")
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), " ".join(rest.split())))
    return out


def stages() -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for instruction in instructions():
        if instruction[0] == "FROM":
            found.append([])
        if found:
            found[-1].append(instruction)
    return found


def copied_sources() -> list[str]:
    """What the build stage COPYs from the build context (the repository's root)."""
    sources = []
    for word, args in stages()[0]:
        if word == "COPY" and not args.startswith("--from"):
            sources += shlex.split(args)[:-1]
    return sources
