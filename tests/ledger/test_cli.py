"""The ledger commands: flush --once, export, void, reconcile, restore."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import hashlib
import io
import json
import logging
import os
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis
import redis.asyncio as aioredis

from tests.ledger_fixtures import ledger_settings
from tests.ledger_support import REPO, cli, service_env, votesvc_process, write_campaign
from tests.localhost import free_port, wait_until
from tests.support import SECRET, FakeClock, phone, running_service, wait_for
from votesvc.campaign import Campaign
from votesvc.cli import main
from votesvc.entry import VoteEntry
from votesvc.keys import Keys
from votesvc.ledger.export import COLUMNS
from votesvc.ledger.flusher import GROUP
from votesvc.ledger.heartbeat import Heartbeat, live_flushers
from votesvc.ledger.store import VoteRow, build_store
from votesvc.ledger.void import default_actor
from votesvc.phones import hash_phone
from votesvc.redis_server import EmbeddedRedis
from votesvc.settings import Settings

CAMPAIGN = "test-campaign"


@pytest.fixture
def sync_redis(redis_server: EmbeddedRedis) -> Any:
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    yield client
    client.close()


def live_tally(client: Any, keys: Keys) -> dict[str, int]:
    counts: dict[str, int] = {}
    for key in keys.tallies():
        for nominee, votes in client.hgetall(key).items():
            if int(votes):
                counts[nominee.decode()] = counts.get(nominee.decode(), 0) + int(votes)
    return counts


def phone_file(tmp_path: Path, number: str) -> str:
    """A file holding ``number``, as ``void --phone-file`` reads it."""
    path = tmp_path / "phone"
    path.write_text(number + "\n")
    return str(path)


class Scene:
    """A campaign, its settings for the CLI, and a way to vote through the API."""

    def __init__(self, tmp_path: Path, url: str, database_url: str | None, **rules: Any) -> None:
        self.campaign: Campaign = write_campaign(tmp_path / "campaign.toml", **rules)
        self.keys = Keys(self.campaign.id, 16)
        self.url = url
        self.api_dir = tmp_path / "api"
        self.clock = FakeClock(time.time())
        self.settings: Settings = ledger_settings(
            tmp_path, database_url, redis_url=url, campaign_path=tmp_path / "campaign.toml"
        )

    def vote(self, *votes: tuple[str, str]) -> list[tuple[int, str, str]]:
        """(status, error code or vote id, nominee) per vote, in order."""

        async def run() -> list[tuple[int, str, str]]:
            out = []
            # The API sets the campaign up against the scene's own ledger.
            ledger = self.settings.database_url or f"sqlite:///{self.settings.database.path}"
            async with running_service(
                self.url,
                self.api_dir,
                campaign=self.campaign,
                clock=self.clock,
                database_url=ledger,
            ) as service:
                for nominee, number in votes:
                    response = await service.vote(nominee, number)
                    body = response.json()
                    key = body["vote_id"] if response.status_code == 201 else body["error"]["code"]
                    out.append((response.status_code, key, nominee))
            return out

        return asyncio.run(run())

    def ledger(self, method: str, *args: Any, **kwargs: Any) -> Any:
        async def run() -> Any:
            store = build_store(self.settings)
            await store.open()
            try:
                return await getattr(store, method)(*args, **kwargs)
            finally:
                await store.close()

        return asyncio.run(run())


def test_flush_once_and_export_with_digest(
    sync_redis: Any, redis_server: EmbeddedRedis, tmp_path: Path, database_url: str | None
) -> None:
    scene = Scene(tmp_path, redis_server.url, database_url)
    cast = scene.vote(*((f"N{n % 4 + 1:02d}", phone(n)) for n in range(25)))
    code, out, _ = cli(scene.settings, "flush", "--once")
    assert code == 0
    assert "flushed 25" in out
    assert cli(scene.settings, "void", "--vote-id", cast[0][1], "--reason", "duplicate SIM")[0] == 0

    target = tmp_path / "out" / "ledger.csv"
    target.parent.mkdir()
    code, out, err = cli(scene.settings, "export", "--out", str(target))
    assert code == 0, err
    data = target.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    assert (tmp_path / "out" / "ledger.csv.sha256").read_text() == f"{digest}  ledger.csv\n"
    assert digest in out
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert len(rows) == 25
    assert list(rows[0]) == list(COLUMNS)
    assert {row["vote_id"] for row in rows} == {vote_id for _, vote_id, _ in cast}
    void_rows = [row for row in rows if row["void"] == "true"]
    assert [(r["vote_id"], r["void_reason"]) for r in void_rows] == [(cast[0][1], "duplicate SIM")]
    assert all(len(row["phone_ref"]) == 64 for row in rows)
    # Every vote came from the test client's network (198.51.100.0/24): one keyed ref.
    assert len({row["prefix_ref"] for row in rows}) == 1
    assert len(rows[0]["prefix_ref"]) == 64
    assert rows[0]["accepted_at"].endswith("+08:00")  # the campaign's zone
    assert {row["method"] for row in rows} == {"none"}  # an unverified campaign


def test_void_takes_votes_off_everywhere_but_not_the_quota(
    sync_redis: Any, redis_server: EmbeddedRedis, tmp_path: Path, database_url: str | None
) -> None:
    scene = Scene(tmp_path, redis_server.url, database_url, votes_per_phone_per_day=2)
    cast = scene.vote(("N01", phone(1)), ("N02", phone(1)), ("N01", phone(2)), ("N03", phone(3)))
    assert [status for status, _, _ in cast] == [201] * 4
    # Not flushed yet: void flushes first, so a vote cast a moment ago can be voided.
    number = phone_file(tmp_path, "+86 139-0000-0001")
    code, out, err = cli(
        scene.settings, "void", "--phone-file", number, "--reason", "bot", "--by", "ops"
    )
    assert code == 0, err
    assert "voided 2 votes" in out
    assert live_tally(sync_redis, scene.keys) == {"N01": 1, "N03": 1}
    assert scene.vote(("N04", phone(1)))[0][:2] == (429, "daily_limit")  # no quota back
    assert scene.vote(("N01", phone(1)))[0][:2] == (409, "already_voted")

    code, out, err = cli(scene.settings, "void", "--vote-id", cast[3][1], "f" * 32, "--reason", "x")
    assert code == 1  # one id is unknown: said so
    assert "not in the ledger" in err
    assert live_tally(sync_redis, scene.keys) == {"N01": 1}
    assert cli(scene.settings, "void", "--vote-id", cast[3][1], "--reason", "x")[0] == 0
    assert live_tally(sync_redis, scene.keys) == {"N01": 1}  # voiding twice changes nothing

    totals = {t.nominee: t.votes for t in scene.ledger("totals", CAMPAIGN)}
    assert totals == {"N01": 1}
    code, out, _ = cli(scene.settings, "award", "--provisional", "--format", "json")
    assert [(n["id"], n["votes"]) for n in json.loads(out)["nominees"][:2]] == [
        ("N01", 1),
        ("N02", 0),
    ]
    log = scene.ledger("audit_log", CAMPAIGN)
    assert [(entry.actor, entry.action, entry.reason) for entry in log[:1]] == [
        ("ops", "void", "bot")
    ]
    assert json.loads(log[0].detail)["count"] == 2
    assert "phone_hash" in json.loads(log[0].detail)
    assert cli(scene.settings, "reconcile")[0] == 0


def test_void_by_phone_within_a_time_window(
    sync_redis: Any, redis_server: EmbeddedRedis, tmp_path: Path, database_url: str | None
) -> None:
    scene = Scene(tmp_path, redis_server.url, database_url)
    first = scene.vote(("N01", phone(1)))
    # Votes are recorded at the Redis server's time (this machine's clock): the
    # window starts between the two votes.
    boundary = time.time()
    wait_until(lambda: time.time() > boundary + 0.005, 1, "the clock moved on")
    later = scene.vote(("N02", phone(1)))
    since = datetime.fromtimestamp(boundary, UTC).isoformat()
    number = phone_file(tmp_path, phone(1))
    code, out, err = cli(
        scene.settings, "void", "--phone-file", number, "--since", since, "--reason", "late burst"
    )
    assert code == 0, err
    assert later[0][1] in out
    assert first[0][1] not in out
    assert live_tally(sync_redis, scene.keys) == {"N01": 1}
    number = phone_file(tmp_path, "123")
    code, _, err = cli(scene.settings, "void", "--phone-file", number, "--reason", "x")
    assert code == 2
    assert (
        err
        == f"votesvc: the number on the first line of {number} is not a mainland mobile number\n"
    )


def test_void_refuses_a_window_that_ends_before_it_starts(
    sync_redis: Any, redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    scene = Scene(tmp_path, redis_server.url, None)
    for since, until in (("2026-06-02T00:00", "2026-06-01T00:00"), ("2026-06-01", "2026-06-01")):
        code, out, err = cli(
            scene.settings, "void", "--phone-file", phone_file(tmp_path, phone(1)),
            "--since", since, "--until", until,
            "--reason", "x",
        )  # fmt: skip
        assert (code, out) == (2, "")
        assert err == f"votesvc: --since {since} must be before --until {until}\n"
    assert scene.ledger("audit_log", CAMPAIGN) == []


def test_a_void_that_matches_nothing_changes_nothing_and_is_not_audited(
    sync_redis: Any, redis_server: EmbeddedRedis, tmp_path: Path, database_url: str | None
) -> None:
    scene = Scene(tmp_path, redis_server.url, database_url)
    [(_, vote_id, _)] = scene.vote(("N01", phone(1)))
    number = phone_file(tmp_path, phone(2))
    code, out, err = cli(scene.settings, "void", "--phone-file", number, "--reason", "bot")
    assert code == 0, err
    assert out.startswith("0 votes voided: no valid vote matched")
    assert cli(scene.settings, "void", "--vote-id", vote_id, "--reason", "bot")[0] == 0
    code, out, _ = cli(scene.settings, "void", "--vote-id", vote_id, "--reason", "again")
    assert code == 0
    assert out.startswith("0 votes voided")
    assert f"{vote_id}  already void" in out
    assert [entry.reason for entry in scene.ledger("audit_log", CAMPAIGN)] == ["bot"]
    assert live_tally(sync_redis, scene.keys) == {}


def test_reconcile_is_clean_then_lists_a_difference(
    sync_redis: Any, redis_server: EmbeddedRedis, tmp_path: Path, database_url: str | None
) -> None:
    scene = Scene(tmp_path, redis_server.url, database_url)
    scene.vote(*((f"N{n % 3 + 1:02d}", phone(n)) for n in range(9)))
    code, out, _ = cli(scene.settings, "reconcile")  # all still pending: still consistent
    assert (code, out.strip()) == (0, "clean: live 9 = ledger 0 + pending 9")
    cli(scene.settings, "flush", "--once")
    code, out, _ = cli(scene.settings, "reconcile")
    assert (code, out.strip()) == (0, "clean: live 9 = ledger 9 + pending 0")
    sync_redis.hincrby(scene.keys.tally(3), "N02", 2)
    code, out, _ = cli(scene.settings, "reconcile")
    assert code == 1
    assert "DIFFERENCES" in out
    [row] = [line.split() for line in out.splitlines() if line.startswith("N02")]
    assert row == ["N02", "5", "3", "0", "+2"]


def test_restore_after_flushall_gives_the_same_live_tally(
    sync_redis: Any, redis_server: EmbeddedRedis, tmp_path: Path, database_url: str | None
) -> None:
    scene = Scene(tmp_path, redis_server.url, database_url, votes_per_phone_per_day=2)
    cast = scene.vote(
        *((f"N{n % 5 + 1:02d}", phone(n)) for n in range(40)), ("N09", phone(0)), ("N10", phone(1))
    )
    assert all(status == 201 for status, _, _ in cast)
    assert cli(scene.settings, "void", "--vote-id", cast[5][1], "--reason", "fraud")[0] == 0
    before = live_tally(sync_redis, scene.keys)
    assert sum(before.values()) == 41

    sync_redis.flushall()  # Redis lost everything: votes wait for the restore
    assert scene.vote(("N07", phone(99)))[0][:2] == (503, "unavailable")
    code, out, err = cli(scene.settings, "restore")
    assert code == 0, out + err
    assert "clean: live 41" in out
    assert live_tally(sync_redis, scene.keys) == before
    assert scene.vote(("N07", phone(99)))[0][0] == 201
    # Today's dedup and quotas are back too, voided vote included.
    assert scene.vote(("N03", phone(0)))[0][:2] == (429, "daily_limit")
    assert scene.vote(("N01", phone(5)))[0][:2] == (409, "already_voted")
    assert scene.vote(("N02", phone(7)))[0][0] == 201


def test_restore_refuses_while_a_flusher_is_running(
    sync_redis: Any, redis_server: EmbeddedRedis, tmp_path: Path, database_url: str | None
) -> None:
    scene = Scene(tmp_path, redis_server.url, database_url)
    scene.vote(("N01", phone(1)))

    async def a_beat() -> None:  # as a running flusher beats, traffic or not
        client = aioredis.Redis.from_url(redis_server.url)
        await Heartbeat(client, scene.keys, "busyhost-1").beat()
        await client.aclose()

    asyncio.run(a_beat())
    code, _, err = cli(scene.settings, "restore")
    assert code == 1
    assert "busyhost-1" in err
    assert cli(scene.settings, "restore", "--force")[0] == 0


@pytest.mark.slow
async def test_restore_refuses_while_idle_serve_workers_run(
    redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    scene = Scene(tmp_path, redis_server.url, None)
    settings = replace(scene.settings, flush_interval=0.3)
    aio = aioredis.Redis.from_url(redis_server.url)
    await aio.flushall()
    within = 3 * settings.flush_interval + 2  # what restore allows

    async def seen_by_group() -> set[str]:
        """The consumers XINFO CONSUMERS calls recent: what restore used to ask."""
        names: set[str] = set()
        for stream in scene.keys.streams():
            if await aio.exists(stream) and await aio.xinfo_groups(stream):
                for info in await aio.xinfo_consumers(stream, GROUP):
                    if info["idle"] < within * 1000:
                        names.add(info["name"].decode())
        return names

    try:
        with votesvc_process(settings, "serve", "--workers", "2", "--port", str(free_port())):

            async def both_beating() -> bool:
                return len(await live_flushers(aio, scene.keys, within=within)) == 2

            await wait_for(both_beating, within=30.0, interval=0.05)
            await asyncio.to_thread(scene.vote, ("N01", phone(1)))  # one vote, then quiet

            async def flushed() -> bool:
                return sum([await aio.xlen(stream) for stream in scene.keys.streams()]) == 0

            await wait_for(flushed, within=10.0)
            assert await seen_by_group()  # a flusher just took the vote: the group saw it

            async def idle_to_the_group() -> bool:
                return not await seen_by_group()

            await wait_for(idle_to_the_group, within=within + 10, interval=0.1)
            workers = set(await live_flushers(aio, scene.keys, within=within))
            assert len(workers) == 2
            code, _, err = await asyncio.to_thread(cli, settings, "restore")
            assert code == 1
            assert "refused, flushers are running" in err
            assert all(worker in err for worker in workers)
        # Stopped cleanly: each worker's flusher took its heartbeat with it.
        assert await aio.hgetall(scene.keys.flushers()) == {}
        code, out, err = await asyncio.to_thread(cli, settings, "restore")
        assert code == 0, out + err
    finally:
        await aio.aclose()


def test_commands_use_the_embedded_redis_a_serve_runs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_campaign(tmp_path / "campaign.toml")
    settings = ledger_settings(tmp_path, None, campaign_path=tmp_path / "campaign.toml")
    running = EmbeddedRedis(tmp_path)
    running.start()
    try:
        caplog.set_level(logging.INFO, logger="votesvc.redis_server")
        assert cli(settings, "reconcile")[0] == 0
        assert f"using the embedded Redis already running (pid {running.pid()})" in caplog.text
        assert running.ping()  # not the command's to stop
    finally:
        running.stop()


def test_commands_start_and_stop_the_embedded_redis(tmp_path: Path) -> None:
    write_campaign(tmp_path / "campaign.toml")
    settings = ledger_settings(tmp_path, None, campaign_path=tmp_path / "campaign.toml")
    code, out, err = cli(settings, "reconcile")
    assert (code, out.strip()) == (0, "clean: live 0 = ledger 0 + pending 0"), err
    assert not EmbeddedRedis(tmp_path).ping()  # it started it, so it stopped it


def test_flush_refuses_a_redis_that_may_evict(tmp_path: Path, own_redis: EmbeddedRedis) -> None:
    write_campaign(tmp_path / "campaign.toml")
    settings = ledger_settings(
        tmp_path, None, redis_url=own_redis.url, campaign_path=tmp_path / "campaign.toml"
    )
    with redis.Redis.from_url(own_redis.url) as client:
        client.config_set("maxmemory-policy", "volatile-lru")
    code, out, err = cli(settings, "flush", "--once")
    assert code == 2, out + err
    assert len(err.strip().splitlines()) == 1
    assert "maxmemory-policy volatile-lru" in err
    assert "VOTESVC_ALLOW_EVICTION=true" in err


class Trickle:
    """Votes appended to the streams (as the vote path appends them) until stopped."""

    def __init__(self, url: str, keys: Keys, first: int) -> None:
        self.client = redis.Redis.from_url(url)
        self.keys = keys
        self.first = self.next = first
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="trickle", daemon=True)

    def __enter__(self) -> Trickle:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.client.close()

    def ids(self, below: int) -> list[str]:
        """The vote ids appended before the ``below``-th."""
        return [f"{n:032x}" for n in range(self.first, below)]

    def _run(self) -> None:
        while not self._stop.is_set():
            n = self.next
            phone_hash = hash_phone(SECRET, phone(n))
            entry = VoteEntry(f"{n:032x}", int(time.time() * 1000), "N01", phone_hash, "0" * 16)
            pipe = self.client.pipeline(transaction=False)
            shard = self.keys.shard_of(phone_hash)
            pipe.hincrby(self.keys.tally(shard), "N01", 1)
            fields: dict[Any, Any] = entry.fields()
            pipe.xadd(self.keys.stream(shard), fields)
            pipe.execute()
            self.next = n + 1


def stream_total(client: Any, keys: Keys) -> int:
    return sum(client.xlen(stream) for stream in keys.streams())


def test_flush_once_under_traffic_stops_where_the_streams_ended(
    sync_redis: Any, redis_server: EmbeddedRedis, tmp_path: Path, database_url: str | None
) -> None:
    scene = Scene(tmp_path, redis_server.url, database_url)
    result: list[tuple[int, str, str]] = []
    with Trickle(redis_server.url, scene.keys, first=10**6) as trickle:
        wait_until(lambda: trickle.next - trickle.first >= 2000, 20, "a backlog in the streams")
        started = trickle.next
        flush = threading.Thread(
            target=lambda: result.append(cli(scene.settings, "flush", "--once")), daemon=True
        )
        flush.start()
        flush.join(timeout=20)  # it used to go on until a pass found nothing: never, here
        finished, ended = not flush.is_alive(), trickle.next
    flush.join(timeout=30)  # the traffic has stopped: an old-style catch-up ends too
    assert finished, "flush --once was still running after 20 s of traffic"
    [(code, out, err)] = result
    assert code == 0, err
    handled = int(out.split()[1])
    # Everything in the streams when it started is in the ledger ...
    before = trickle.ids(started)
    assert scene.ledger("existing_ids", CAMPAIGN, before) == set(before)
    # ... and what came while it ran was left to the running flushers (a read past
    # a stream's end hands it at most one read's worth more, which it writes too).
    assert scene.ledger("count", CAMPAIGN) == handled < ended - trickle.first
    assert stream_total(sync_redis, scene.keys) > 0


def refuse_ledger_writes(scene: Scene) -> None:
    """From now on the ledger refuses every vote written to it, as a full disk would."""
    path = scene.settings.database.path
    if path is not None:
        with contextlib.closing(sqlite3.connect(path)) as conn:
            conn.execute(
                "CREATE TRIGGER refuse BEFORE INSERT ON votes"
                " BEGIN SELECT RAISE(ABORT, 'disk full'); END"
            )
            conn.commit()
        return

    async def install() -> None:
        conn = await asyncpg.connect(scene.settings.database_url)
        try:
            await conn.execute(
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS"
                " $$ BEGIN RAISE EXCEPTION 'disk full'; END $$;"
                " CREATE TRIGGER refuse BEFORE INSERT ON votes"
                " FOR EACH ROW EXECUTE FUNCTION refuse()"
            )
        finally:
            await conn.close()

    asyncio.run(install())


def test_restore_changes_nothing_when_the_pending_votes_cannot_be_flushed(
    sync_redis: Any, redis_server: EmbeddedRedis, tmp_path: Path, database_url: str | None
) -> None:
    scene = Scene(tmp_path, redis_server.url, database_url)
    cast = scene.vote(("N01", phone(1)), ("N02", phone(2)))  # pending in the streams
    for marker in scene.keys.markers():  # the vote path only asks whether they exist
        sync_redis.set(marker, "as-before")
    tally = live_tally(sync_redis, scene.keys)
    refuse_ledger_writes(scene)
    code, out, err = cli(scene.settings, "restore")
    assert (code, out) == (1, "")
    assert err.startswith("votesvc restore: refused, the votes pending in Redis could not be ")
    assert err.endswith("nothing was changed\n")
    assert len(err.splitlines()) == 1
    assert [sync_redis.get(marker) for marker in scene.keys.markers()] == [b"as-before"] * 16
    assert live_tally(sync_redis, scene.keys) == tally
    assert stream_total(sync_redis, scene.keys) == 2
    assert scene.ledger("audit_log", CAMPAIGN) == []
    # The other commands that catch up say so too, rather than go on as if complete.
    for argv in (("flush", "--once"), ("void", "--vote-id", cast[0][1], "--reason", "x")):
        code, out, err = cli(scene.settings, *argv)
        assert (code, out) == (1, "")
        assert err.startswith("votesvc: the ledger database is unavailable: 2 votes pending")
    assert live_tally(sync_redis, scene.keys) == tally


def test_restore_counts_a_vote_in_the_ledger_and_still_in_its_stream_once(
    sync_redis: Any, redis_server: EmbeddedRedis, tmp_path: Path, database_url: str | None
) -> None:
    scene = Scene(tmp_path, redis_server.url, database_url)
    cast = scene.vote(*((f"N{n % 3 + 1:02d}", phone(n)) for n in range(6)))
    # A flusher took the entries, wrote them and acknowledged them; the streams
    # are not trimmed yet. Nothing is left for a catch-up to claim or read.
    rows = []
    for stream in scene.keys.streams():
        sync_redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
        for _, taken in sync_redis.xreadgroup(GROUP, "otherhost-1", {stream: ">"}) or []:
            for entry_id, fields in taken:
                v = VoteEntry.from_fields(fields)
                rows.append(
                    VoteRow(
                        v.vote_id,
                        CAMPAIGN,
                        v.nominee,
                        v.phone_hash,
                        v.ip_hash,
                        v.accepted_at,
                        v.method,
                    )
                )
                sync_redis.xack(stream, GROUP, entry_id)
    assert scene.ledger("insert_votes", rows) == len(cast) == 6
    before = live_tally(sync_redis, scene.keys)
    assert stream_total(sync_redis, scene.keys) == 6

    code, out, err = cli(scene.settings, "restore")
    assert code == 0, out + err
    assert "restored: 6 valid votes from the ledger" in out
    assert "0 pending votes counted on top" in out
    assert "clean: live 6 = ledger 6 + pending 0" in out
    assert live_tally(sync_redis, scene.keys) == before
    # Today's records hold each phone's vote once: a second vote for another nominee fits.
    assert scene.vote(("N05", phone(0)))[0][0] == 201
    assert scene.vote(("N01", phone(0)))[0][:2] == (409, "already_voted")


def test_restore_export_and_void_write_audit_rows(
    sync_redis: Any, redis_server: EmbeddedRedis, tmp_path: Path, database_url: str | None
) -> None:
    scene = Scene(tmp_path, redis_server.url, database_url)
    cast = scene.vote(("N01", phone(1)), ("N02", phone(2)), ("N02", phone(3)))
    start = int(time.time() * 1000)
    argv = ("void", "--vote-id", cast[0][1], "--reason", "dup", "--by", "ann")
    assert cli(scene.settings, *argv)[0] == 0
    target = tmp_path / "ledger.csv"
    code, _, err = cli(scene.settings, "export", "--out", str(target), "--by", "bob")
    assert code == 0, err
    code, _, err = cli(scene.settings, "export", "--out", str(tmp_path / "i.csv"), "--internal")
    assert code == 0, err
    code, out, err = cli(scene.settings, "restore", "--by", "cid")
    assert code == 0, out + err
    assert cli(scene.settings, "restore")[0] == 0
    end = int(time.time() * 1000)

    log = scene.ledger("audit_log", CAMPAIGN)
    assert [(row.action, row.actor) for row in log] == [
        ("void", "ann"),
        ("export", "bob"),
        ("export", default_actor()),
        ("restore", "cid"),
        ("restore", default_actor()),
    ]
    assert all(start <= row.at <= end for row in log)
    void, export, internal, restore, _ = (json.loads(row.detail) for row in log)
    assert (log[0].reason, void["count"], void["voided"]) == ("dup", 1, [cast[0][1]])
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    assert export == {
        "file": str(target),
        "rows": 3,
        "void": 1,
        "label": CAMPAIGN,
        "internal": False,
        "sha256": digest,
    }
    assert (internal["label"], internal["internal"], internal["rows"]) == (None, True, 3)
    assert restore == {
        "valid_votes": 2,
        "phones_today": 3,
        "replayed": 0,
        "flushed_first": 0,
        "running_flushers": [],
    }


def test_void_takes_the_phone_from_stdin_or_a_file_never_the_command_line(
    sync_redis: Any, redis_server: EmbeddedRedis, tmp_path: Path, database_url: str | None
) -> None:
    scene = Scene(tmp_path, redis_server.url, database_url)
    cast = scene.vote(("N01", phone(1)), ("N02", phone(2)), ("N03", phone(3)))

    code, out, err = cli(scene.settings, "void", "--phone", phone(1), "--reason", "bot")
    assert (code, out) == (2, "")
    assert "reads the number from stdin" in err
    assert "ps" in err
    assert phone(1) not in err
    assert scene.ledger("audit_log", CAMPAIGN) == []

    code, out, err = cli(
        scene.settings, "void", "--phone-file", phone_file(tmp_path, phone(1)), "--reason", "bot"
    )
    assert code == 0, err
    assert cast[0][1] in out

    done = subprocess.run(
        [sys.executable, "-m", "votesvc", "void", "--phone", "-", "--reason", "bot"],
        input=f"{phone(2)}\n",
        env=service_env(scene.settings),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert cast[1][1] in done.stdout
    assert phone(2) not in done.stdout + done.stderr
    assert live_tally(sync_redis, scene.keys) == {"N03": 1}

    (tmp_path / "empty").write_text("")
    code, _, err = cli(
        scene.settings, "void", "--phone-file", str(tmp_path / "empty"), "--reason", "bot"
    )
    assert (code, err) == (2, f"votesvc: no phone number on the first line of {tmp_path}/empty\n")


LEDGER_COMMANDS = [
    ("award",),
    ("export", "--out", "export.csv"),
    ("reconcile",),
    ("void", "--vote-id", "f" * 32, "--reason", "x"),
    ("restore",),
]


def with_password(url: str) -> str:
    """``url`` with a password in it (the test cluster trusts local connections)."""
    return url.replace("postgres@", "postgres:hunter2-secret@", 1)


async def has_schema(url: str) -> bool:
    conn = await asyncpg.connect(url)
    try:
        return bool(await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL"))
    finally:
        await conn.close()


@pytest.mark.parametrize("argv", LEDGER_COMMANDS, ids=[argv[0] for argv in LEDGER_COMMANDS])
def test_a_command_finds_no_ledger_exits_2_naming_where_and_creates_nothing(
    argv: tuple[str, ...],
    tmp_path: Path,
    database_url: str | None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_campaign(tmp_path / "campaign.toml")
    typo = tmp_path / "dtaa"  # VOTESVC_DATA_DIR mistyped: nothing there
    for name in [name for name in os.environ if name.startswith("VOTESVC_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("VOTESVC_DATA_DIR", str(typo))  # no VOTESVC_SECRET, no VOTESVC_REDIS_URL
    monkeypatch.setenv("VOTESVC_CAMPAIGN", str(tmp_path / "campaign.toml"))
    monkeypatch.chdir(tmp_path)
    if database_url is None:
        where = f"sqlite:///{typo / 'ledger.sqlite3'}"
        what = "file"
    else:  # a database that exists, without the ledger's tables
        monkeypatch.setenv("VOTESVC_DATABASE_URL", with_password(database_url))
        where, what = database_url, "schema_migrations table"

    code = main(list(argv))
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert err.splitlines() == [
        f"votesvc: ledger {where}",
        f"votesvc: no ledger at {where} (no such {what}; nothing was created): check "
        "VOTESVC_DATA_DIR and VOTESVC_DATABASE_URL (`votesvc serve` or `votesvc flush` "
        "creates a ledger)",
    ]
    assert not typo.exists()  # no secret, no embedded Redis's directory, no ledger file
    assert sorted(path.name for path in tmp_path.iterdir()) == ["campaign.toml"]
    if database_url is not None:
        assert not asyncio.run(has_schema(database_url))  # looked, did not migrate


def test_ledger_commands_name_their_ledger_on_stderr_and_keep_stdout_clean(
    sync_redis: Any, redis_server: EmbeddedRedis, tmp_path: Path, database_url: str | None
) -> None:
    scene = Scene(tmp_path, redis_server.url, database_url)
    scene.vote(("N01", phone(1)), ("N02", phone(2)))
    settings = scene.settings
    if database_url is None:
        where = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    else:
        settings = replace(settings, database_url=with_password(database_url))
        where = database_url
    for argv, reads in (
        (("flush", "--once"), False),
        (("award", "--provisional", "--format", "json"), True),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "votesvc", *argv],
            env=service_env(settings),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert done.stderr.splitlines()[0] == f"votesvc: ledger {where}"
        assert "hunter2" not in done.stderr
        if reads:
            award = json.loads(done.stdout)
            assert [(n["id"], n["votes"]) for n in award["nominees"][:2]] == [
                ("N01", 1),
                ("N02", 1),
            ]


def test_void_previews_then_voids_a_nominees_votes_within_a_range(
    sync_redis: Any, redis_server: EmbeddedRedis, tmp_path: Path, database_url: str | None
) -> None:
    scene = Scene(tmp_path, redis_server.url, database_url, award_seats=1)
    scene.vote(("N01", phone(1)), ("N01", phone(2)), ("N02", phone(3)))
    code, out, err = cli(scene.settings, "void", "--nominee", "N01", "--preview")
    assert code == 0, err
    assert out.splitlines() == [
        "would void 2 votes (nothing changed: --preview)",
        "  N01      -2",
        "the top 1 would change: N01 out, N02 in",
    ]
    assert live_tally(sync_redis, scene.keys) == {"N01": 2, "N02": 1}
    assert scene.ledger("audit_log", CAMPAIGN) == []
    assert cli(scene.settings, "void", "--vote-id", "x")[:1] == (2,)  # no reason
    assert cli(scene.settings, "void", "--nominee", "N99", "--reason", "x")[0] == 2
    code, out, _ = cli(
        scene.settings, "void", "--nominee", "N01", "--since", "2099-01-01T00:00", "--reason", "x"
    )
    assert (code, out.splitlines()[0]) == (
        0,
        "0 votes voided: no valid vote matched (nothing changed, no audit row written)",
    )
    code, out, err = cli(scene.settings, "void", "--nominee", "N01", "--reason", "bots")
    assert code == 0, err
    assert out.startswith("voided 2 votes")
    assert live_tally(sync_redis, scene.keys) == {"N02": 1}
    (entry,) = scene.ledger("audit_log", CAMPAIGN)
    detail = json.loads(entry.detail)
    assert (detail["nominee"], detail["count"], detail["by_nominee"], detail["via"]) == (
        "N01",
        2,
        {"N01": 2},
        "command line",
    )
