"""Helpers for the ledger tests: synthetic stream entries, CLI runs, vote casting."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from tests.support import SECRET, make_campaign, running_service
from votesvc.campaign import Campaign
from votesvc.cli import build_parser
from votesvc.entry import VoteEntry
from votesvc.errors import ConfigError
from votesvc.keys import Keys
from votesvc.phones import hash_phone
from votesvc.settings import Settings

REPO = Path(__file__).resolve().parent.parent


async def prefill_streams(
    client: Any,
    keys: Keys,
    count: int,
    *,
    nominees: int = 30,
    start_ms: int = 1_780_000_000_000,
    first: int = 0,
) -> dict[str, int]:
    """Append ``count`` synthetic accepted votes (and count them live), as the vote path would.

    Votes (and phones) are numbered from ``first``. Returns the votes per nominee.
    """
    counts: dict[str, int] = {}
    end = first + count
    for base in range(first, end, 5000):
        pipe = client.pipeline(transaction=False)
        for n in range(base, min(end, base + 5000)):
            phone_hash = hash_phone(SECRET, f"139{n:08d}")
            shard = keys.shard_of(phone_hash)
            nominee = f"N{n % nominees + 1:02d}"
            counts[nominee] = counts.get(nominee, 0) + 1
            pipe.hincrby(keys.tally(shard), nominee, 1)
            entry = VoteEntry(f"{n:032x}", start_ms + n, nominee, phone_hash, "0" * 16)
            pipe.xadd(keys.stream(shard), entry.fields())
        await pipe.execute()
    return counts


def write_campaign(path: Path, **kwargs: Any) -> Campaign:
    from tests.support import campaign_toml

    text = campaign_toml(**kwargs)
    path.write_text(text)
    return make_campaign(**kwargs)


def cli(settings: Settings, *argv: str) -> tuple[int, str, str]:
    """Run one ``votesvc`` command in this process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    args = build_parser().parse_args(list(argv))
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = args.func(args, settings)
        except ConfigError as exc:
            print(f"votesvc: {exc}", file=sys.stderr)
            code = 2
    return code, out.getvalue(), err.getvalue()


def service_env(settings: Settings) -> dict[str, str]:
    """The environment that gives a ``votesvc`` process these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOTESVC_")}
    env.update(
        VOTESVC_DATA_DIR=str(settings.data_dir),
        VOTESVC_SECRET=settings.secret.decode(),
        VOTESVC_FLUSH_INTERVAL=str(settings.flush_interval),
        VOTESVC_FLUSH_BATCH=str(settings.flush_batch),
        VOTESVC_FLUSH_CLAIM_AFTER=str(settings.flush_claim_after),
        VOTESVC_LOG_LEVEL="INFO",
    )
    if settings.redis_url:
        env["VOTESVC_REDIS_URL"] = settings.redis_url
    if settings.database_url:
        env["VOTESVC_DATABASE_URL"] = settings.database_url
    if settings.campaign_path:
        env["VOTESVC_CAMPAIGN"] = str(settings.campaign_path)
    return env


@contextlib.contextmanager
def votesvc_process(settings: Settings, *argv: str) -> Iterator[subprocess.Popen[bytes]]:
    """A ``votesvc`` subprocess, stopped (SIGTERM, then SIGKILL) when the block ends."""
    log = (settings.data_dir / f"{argv[0]}-{time.monotonic_ns()}.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "votesvc", *argv],
        env=service_env(settings),
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        log.close()


async def cast(
    redis_url: str,
    tmp_path: Path,
    campaign: Campaign,
    votes: Sequence[tuple[str, str]],
    *,
    now: float | None = None,
) -> list[str]:
    """Cast (nominee, phone) votes through the HTTP API; the vote ids of the 201s."""
    from tests.support import FakeClock

    clock = FakeClock(now) if now is not None else FakeClock(time.time())
    ids = []
    async with running_service(redis_url, tmp_path, campaign=campaign, clock=clock) as service:
        for nominee, number in votes:
            response = await service.vote(nominee, number)
            assert response.status_code == 201, response.text
            ids.append(response.json()["vote_id"])
    return ids
