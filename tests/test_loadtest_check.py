"""loadtest/check.py: the load test's verdicts, on a real ledger and a real Redis.

The check is what ``make loadtest`` runs once locust stops; here it is given
the vote ids a real service accepted (as locust would have recorded them),
passes, and then fails once a vote is missing from the ledger.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from loadtest.check import (
    LedgerCheck,
    Seen,
    ServiceCheck,
    Verdict,
    check_service,
    main,
    p99,
)
from tests.ledger_support import write_campaign
from tests.support import SECRET, phone, running_service
from votesvc.ledger.store import build_store
from votesvc.redis_server import EmbeddedRedis
from votesvc.settings import Settings

CAMPAIGN = "loadtest-check"


@pytest.fixture
def data_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """The embedded Redis of the data dir, as the load test's `serve` runs it."""
    server = EmbeddedRedis(tmp_path / "data")
    server.start()
    yield server
    server.stop()


async def delete_vote(settings: Settings, vote_id: str) -> None:
    """The planted fault: one accepted vote gone from the ledger."""
    database = settings.database
    if database.path is not None:  # SQLite
        with sqlite3.connect(database.path) as conn:
            assert conn.execute("DELETE FROM votes WHERE vote_id = ?", (vote_id,)).rowcount == 1
        return
    conn = await asyncpg.connect(settings.database_url, timeout=10)
    try:
        assert await conn.execute("DELETE FROM votes WHERE vote_id = $1", vote_id) == "DELETE 1"
    finally:
        await conn.close()


@pytest.mark.slow  # runs `votesvc reconcile` processes
async def test_a_clean_run_passes_and_a_vote_missing_from_the_ledger_fails(
    tmp_path: Path, data_redis: EmbeddedRedis, database_url: str | None
) -> None:
    data = tmp_path / "data"
    path = tmp_path / "campaign.toml"
    campaign = write_campaign(path, campaign_id=CAMPAIGN)
    settings = Settings(data_dir=data, database_url=database_url, secret=SECRET)
    env = {
        "VOTESVC_DATA_DIR": str(data),
        "VOTESVC_CAMPAIGN": str(path),
        "VOTESVC_SECRET": SECRET.decode(),
    }
    if database_url:
        env["VOTESVC_DATABASE_URL"] = database_url
    async with running_service(
        data_redis.url,
        data,
        campaign=campaign,
        flush_in_serve=True,
        flush_interval=0.1,
        database_url=database_url,
    ) as service:
        replies = await asyncio.gather(
            *(service.vote(f"N{n % 5 + 1:02d}", phone(n)) for n in range(30))
        )
        assert {reply.status_code for reply in replies} == {201}
        seen = [reply.json()["vote_id"] for reply in replies]

        clean = await check_service("open", env, seen, flush_within=20)
        assert clean.ok, clean
        assert clean.ledger == LedgerCheck(30, 30, [], [], [])
        assert clean.reconcile_output.strip().endswith("clean: live 30 = ledger 30 + pending 0")

        await delete_vote(settings, seen[7])
        faulty = await check_service("open", env, seen, flush_within=20)
        assert not faulty.ok
        assert faulty.ledger.missing == [seen[7]]
        assert faulty.reconcile_status == 1  # live 30 = ledger 29 + pending 0: a difference
        verdict = Verdict([faulty], Counter(), 30, 4.0, 100.0)
        report = verdict.report()
        assert not verdict.ok
        assert f"missing {seen[7]}" in report
        assert "DIFFERENCES" in report
        assert report.endswith("RESULT: FAIL\n")

        # An id locust never saw accepted is a difference too (a vote counted after a timeout).
        unseen = await check_service("open", env, seen[:7] + seen[8:20], flush_within=5)
        assert unseen.ledger.unseen == sorted(seen[20:])
        assert not unseen.ok


def test_the_report_states_every_verdict() -> None:
    exact = ServiceCheck(
        "open", LedgerCheck(3, 3, [], [], []), True, 0, "clean: live 3 = ledger 3 + pending 0\n"
    )
    passing = Verdict([exact], Counter(), 120, 12.5, 100.0)
    assert passing.ok
    report = passing.report()
    assert "1. ledger = the 201s locust saw: PASS" in report
    assert "open: 3 accepted seen, 3 in the ledger, 0 missing" in report
    assert "votesvc reconcile (exit 0): clean: live 3" in report
    assert "2. errors beyond the expected 409/429: 0 (PASS)" in report
    assert "3. vote p99: 12.5 ms over 120 votes, limit 100 ms (PASS)" in report
    assert report.endswith("RESULT: PASS\n")

    errors = Verdict([exact], Counter({"/v1/votes: unexpected 500": 2}), 120, 12.5, 100.0)
    assert not errors.ok
    assert "2. errors beyond the expected 409/429: 2 (FAIL)" in errors.report()
    slow = Verdict([exact], Counter(), 120, 180.0, 100.0)
    assert not slow.ok
    assert "3. vote p99: 180.0 ms over 120 votes, limit 100 ms (FAIL)" in slow.report()
    assert not Verdict([], Counter(), 0, None, 100.0).ok  # nothing checked is no pass


def test_records_of_several_locust_processes_are_merged(tmp_path: Path) -> None:
    for pid, ids in ((11, ["a", "b"]), (12, ["c"])):
        record = {
            "accepted": {"open": ids, "sms": [f"s{pid}"]},
            "vote_ms": [1.0 * pid, 2.0],
            "requests": {"/v1/votes 201 accepted": len(ids)},
            "errors": {"/v1/tally: unexpected 503": 1},
        }
        (tmp_path / f"locust-{pid}.json").write_text(json.dumps(record))
    seen = Seen.read(tmp_path)
    assert sorted(seen.accepted["open"]) == ["a", "b", "c"]
    assert sorted(seen.accepted["sms"]) == ["s11", "s12"]
    assert seen.requests["/v1/votes 201 accepted"] == 3
    assert seen.errors["/v1/tally: unexpected 503"] == 2
    assert p99(seen.vote_ms) == 12.0
    assert p99([float(n) for n in range(1, 201)]) == 198.0
    assert p99([]) is None


@pytest.mark.slow
def test_the_command_exits_1_on_a_failed_check(
    tmp_path: Path, data_redis: EmbeddedRedis, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    path = tmp_path / "campaign.toml"
    write_campaign(path, campaign_id=CAMPAIGN)
    (data / "secret").write_text(SECRET.decode())
    asyncio.run(_open_ledger(Settings(data_dir=data, secret=SECRET)))
    record = {"accepted": {"open": ["f" * 32]}, "vote_ms": [3.0], "requests": {}, "errors": {}}
    (tmp_path / "locust-1.json").write_text(json.dumps(record))
    report = tmp_path / "check.txt"
    service = f"open={data},{path}"
    argv = ["--record", str(tmp_path), "--service", service, "--report", str(report)]
    assert main(argv) == 1  # a 201 that the (empty) ledger does not hold
    out = capsys.readouterr().out
    assert f"missing {'f' * 32}" in out
    assert report.read_text() == out


async def _open_ledger(settings: Settings) -> None:
    store = build_store(settings)
    await store.open()
    await store.close()
