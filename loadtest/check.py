"""What ``make loadtest`` checks once locust has stopped: that the run was exact and fast.

    python -m loadtest.check --record DIR --service open=DATA_DIR,CAMPAIGN [--service ...]

Three verdicts, each stated in the report, any failure an exit status of 1:

1. **The ledger holds exactly the 201s locust saw**, for each service: once its
   flusher has moved every vote out of Redis (waited for, with a bound),
   ``votesvc reconcile`` must be clean and the ledger's vote ids must be the
   accepted ids that locust recorded for that campaign (``locustfile.py
   --record``): none missing, none unseen, none twice.
2. **No error** beyond the scenarios' expected refusals (``409``, ``429``,
   which locust counts as successes): every locust failure and user error fails.
3. **Vote p99** (every ``POST /v1/votes`` locust timed) at most ``--p99-ms``
   (``LOADTEST_P99_MS``, default 100).

Each service is named by the environment a ``votesvc`` command of it needs: its
data directory (the embedded Redis its ``serve`` runs, the SQLite ledger, the
secret) and campaign file. :func:`check_service` and :class:`Verdict` are the
parts a test drives without locust (tests/test_loadtest_check.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from votesvc.campaign import load_campaign
from votesvc.connection import connect
from votesvc.keys import Keys
from votesvc.ledger.reconcile import pending_votes
from votesvc.ledger.store import Store, build_store
from votesvc.redis_server import EmbeddedRedis
from votesvc.settings import Settings

__all__ = [
    "LedgerCheck",
    "Seen",
    "ServiceCheck",
    "Verdict",
    "check_service",
    "compare_ledger",
    "main",
    "p99",
]

P99_MS = 100.0  # the default gate on the vote p99 (LOADTEST_P99_MS)
FLUSH_WITHIN = 60.0  # seconds the flush of what locust left in Redis may take
SHOWN = 10  # ids listed per kind of difference in the report


@dataclass
class Seen:
    """What the locust processes recorded, merged (``locustfile.py --record``)."""

    accepted: dict[str, list[str]] = field(default_factory=dict)  # campaign -> vote ids
    vote_ms: list[float] = field(default_factory=list)
    requests: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)

    @classmethod
    def read(cls, directory: Path) -> Seen:
        seen = cls()
        for path in sorted(directory.glob("locust-*.json")):
            record = json.loads(path.read_text())
            for campaign, ids in record["accepted"].items():
                seen.accepted.setdefault(campaign, []).extend(ids)
            seen.vote_ms.extend(record["vote_ms"])
            seen.requests.update(record["requests"])
            seen.errors.update(record["errors"])
        return seen


def p99(values: Sequence[float]) -> float | None:
    """The 99th percentile (nearest rank), None without values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(0.99 * len(ordered)) - 1, 0)]


@dataclass(frozen=True, slots=True)
class LedgerCheck:
    """The ledger's vote ids held against the accepted ids locust saw."""

    seen: int
    in_ledger: int
    missing: list[str]  # accepted (201), not in the ledger
    unseen: list[str]  # in the ledger, no 201 seen for it
    repeated: list[str]  # one vote id in two 201s (the load test sends no Idempotency-Key)

    @property
    def exact(self) -> bool:
        return not (self.missing or self.unseen or self.repeated)


async def compare_ledger(store: Store, campaign: str, seen: Iterable[str]) -> LedgerCheck:
    """Hold ``store``'s votes of ``campaign`` against the ``seen`` accepted vote ids."""
    accepted = Counter(seen)
    held: set[str] = set()
    async for chunk in store.votes(campaign):
        held.update(vote.vote_id for vote in chunk)
    return LedgerCheck(
        seen=sum(accepted.values()),
        in_ledger=len(held),
        missing=sorted(set(accepted) - held),
        unseen=sorted(held - set(accepted)),
        repeated=sorted(vote_id for vote_id, times in accepted.items() if times > 1),
    )


@dataclass(frozen=True, slots=True)
class ServiceCheck:
    name: str
    ledger: LedgerCheck
    flushed: bool  # Redis held no vote the ledger lacks, within the bound
    reconcile_status: int
    reconcile_output: str

    @property
    def ok(self) -> bool:
        return self.flushed and self.reconcile_status == 0 and self.ledger.exact


def service_env(env: Mapping[str, str]) -> dict[str, str]:
    """This environment less any ``VOTESVC_*`` variable, plus the service's own."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("VOTESVC_")}
    return base | dict(env)


async def check_service(
    name: str, env: Mapping[str, str], seen: Iterable[str], *, flush_within: float = FLUSH_WITHIN
) -> ServiceCheck:
    """Wait for the flush, run ``votesvc reconcile``, hold the ledger to ``seen``.

    ``env``: the ``VOTESVC_*`` variables of the service (its data directory, its
    campaign file, and whatever else it was started with). Its Redis must still run.
    """
    full_env = service_env(env)
    settings = Settings.from_env(full_env)
    if settings.redis_url is None:  # the embedded Redis its `serve` runs
        settings = settings.with_redis_url(EmbeddedRedis(settings.data_dir).url)
    campaign = load_campaign(settings.campaign_path)
    keys = Keys(campaign.id, settings.shards)
    client = connect(settings)
    store = build_store(settings)
    try:
        await store.open()
        deadline = time.monotonic() + flush_within
        while True:
            flushed = not await pending_votes(client, keys, store)
            if flushed or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        reconciled = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "votesvc",
            "reconcile",
            env=full_env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await reconciled.communicate()
        ledger = await compare_ledger(store, campaign.id, seen)
    finally:
        await store.close()
        await client.aclose()
    return ServiceCheck(name, ledger, flushed, reconciled.returncode or 0, output.decode())


@dataclass(frozen=True, slots=True)
class Verdict:
    """The three verdicts of a run, and the report that states them."""

    services: list[ServiceCheck]
    errors: Counter[str]
    votes_timed: int
    p99_ms: float | None
    p99_limit_ms: float

    @property
    def exact(self) -> bool:
        return bool(self.services) and all(service.ok for service in self.services)

    @property
    def fast(self) -> bool:
        return self.p99_ms is not None and self.p99_ms <= self.p99_limit_ms

    @property
    def ok(self) -> bool:
        return self.exact and not self.errors and self.fast

    def report(self) -> str:
        lines = ["load test check", ""]
        lines.append(f"1. ledger = the 201s locust saw: {'PASS' if self.exact else 'FAIL'}")
        for service in self.services:
            lines += _service_lines(service)
        errors = sum(self.errors.values())
        lines.append(f"2. errors beyond the expected 409/429: {errors} ({_verdict(not errors)})")
        for message, count in self.errors.most_common(SHOWN):
            lines.append(f"   {count:>7}  {message}")
        shown = "none timed" if self.p99_ms is None else f"{self.p99_ms:.1f} ms"
        lines.append(
            f"3. vote p99: {shown} over {self.votes_timed} votes, limit "
            f"{self.p99_limit_ms:g} ms ({_verdict(self.fast)})"
        )
        lines += ["", "RESULT: " + ("PASS" if self.ok else "FAIL")]
        return "\n".join(lines) + "\n"


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def _service_lines(service: ServiceCheck) -> list[str]:
    ledger = service.ledger
    lines = [
        f"   {service.name}: {ledger.seen} accepted seen, {ledger.in_ledger} in the ledger, "
        f"{len(ledger.missing)} missing, {len(ledger.unseen)} unseen, "
        f"{len(ledger.repeated)} repeated ({_verdict(service.ok)})"
    ]
    if not service.flushed:
        lines.append("   the flush did not finish: votes are still only in Redis")
    for kind, ids in (
        ("missing", ledger.missing),
        ("unseen", ledger.unseen),
        ("repeated", ledger.repeated),
    ):
        for vote_id in ids[:SHOWN]:
            lines.append(f"     {kind} {vote_id}")
    reconcile = service.reconcile_output.strip().splitlines() or ["(no output)"]
    lines.append(f"   votesvc reconcile (exit {service.reconcile_status}): {reconcile[-1]}")
    if service.reconcile_status:
        lines += [f"     {line}" for line in reconcile[:-1]]
    return lines


async def run_checks(
    services: Sequence[tuple[str, dict[str, str]]],
    seen: Seen,
    p99_limit_ms: float,
    *,
    flush_within: float = FLUSH_WITHIN,
) -> Verdict:
    checks = [
        await check_service(name, env, seen.accepted.get(name, ()), flush_within=flush_within)
        for name, env in services
    ]
    return Verdict(checks, seen.errors, len(seen.vote_ms), p99(seen.vote_ms), p99_limit_ms)


def _service(text: str) -> tuple[str, dict[str, str]]:
    name, _, rest = text.partition("=")
    data_dir, _, campaign = rest.partition(",")
    if not (name and data_dir and campaign):
        raise argparse.ArgumentTypeError(f"expected NAME=DATA_DIR,CAMPAIGN, not {text!r}")
    return name, {"VOTESVC_DATA_DIR": data_dir, "VOTESVC_CAMPAIGN": campaign}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="check a load test run against its ledgers")
    parser.add_argument("--record", type=Path, required=True, help="locustfile.py --record DIR")
    parser.add_argument(
        "--service", type=_service, action="append", required=True,
        help="NAME=DATA_DIR,CAMPAIGN: a campaign locust voted in (NAME as the record has it)",
    )  # fmt: skip
    parser.add_argument(
        "--p99-ms", type=float, default=float(os.environ.get("LOADTEST_P99_MS") or P99_MS),
        help="the most the vote p99 may be, in ms (LOADTEST_P99_MS; default %(default)g)",
    )  # fmt: skip
    parser.add_argument("--report", type=Path, help="also write the report to this file")
    args = parser.parse_args(argv)
    seen = Seen.read(args.record)
    verdict = asyncio.run(run_checks(args.service, seen, args.p99_ms))
    text = verdict.report()
    sys.stdout.write(text)
    if args.report is not None:
        args.report.write_text(text)
    return 0 if verdict.ok else 1


if __name__ == "__main__":
    sys.exit(main())
