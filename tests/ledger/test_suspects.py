"""Suspicious activity: each signal just over and just under its threshold, the
selection of each finding names exactly its votes, ``[suspects]`` in the campaign
file, and ``votesvc suspects`` in its three formats."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import datetime
from pathlib import Path

import pytest

from tests.ledger_fixtures import ledger_settings
from tests.ledger_support import cli
from tests.support import SECRET, campaign_toml, make_campaign
from votesvc.campaign import Campaign, Suspects, parse_campaign
from votesvc.errors import CampaignError
from votesvc.ledger.export import Refs
from votesvc.ledger.store import Store, VoteRow, build_store
from votesvc.ledger.suspects import Finding, find_suspects, signals
from votesvc.redis_server import EmbeddedRedis

CAMPAIGN = make_campaign()
MINUTE = 60_000
# 10:00 sharp in the campaign's zone (Asia/Shanghai): a clock hour starts here
HOUR = int(datetime.fromisoformat("2026-06-01T10:00:00+08:00").timestamp() * 1000)
P1, P2 = "a1" * 8, "b2" * 8

_votes = iter(range(1, 10**9))


def vote(nominee: str, at: int, *, prefix: str = "", phone: str | None = None) -> VoteRow:
    """A vote of its own phone (unless ``phone``), from ``prefix`` ("" unknown)."""
    n = next(_votes)
    return VoteRow(
        f"{n:032x}", CAMPAIGN.id, nominee, phone or f"{n:064x}", "0" * 16, at, "none", prefix
    )


async def findings(
    store: Store, rows: list[VoteRow], campaign: Campaign = CAMPAIGN
) -> list[Finding]:
    await store.insert_votes(rows)
    return await find_suspects(store, campaign)


async def selected(store: Store, finding: Finding) -> set[str]:
    return {v.vote_id for v in await store.select_valid(CAMPAIGN.id, finding.selection)}


def round_robin(count: int, start: int, minutes: int, prefix: str = "") -> list[VoteRow]:
    """``count`` votes spread over ``minutes`` and over all 30 nominees."""
    return [
        vote(f"N{i % 30 + 1:02d}", start + i * (minutes * MINUTE) // count, prefix=prefix)
        for i in range(count)
    ]


@pytest.mark.parametrize(("votes", "found"), [(201, True), (200, False)])
async def test_a_prefix_over_its_votes_per_hour(store: Store, votes: int, found: bool) -> None:
    burst = round_robin(votes, HOUR, 59, prefix=P1)
    other = round_robin(150, HOUR, 59, prefix=P2)
    late = [vote("N01", HOUR + 60 * MINUTE, prefix=P1)]  # 11:00: the next clock hour
    result = await findings(store, [*burst, *other, *late])
    if not found:
        assert result == []
        return
    [finding] = result
    assert (finding.signal, finding.nominee, finding.prefix_hash) == (
        "prefix_votes_per_hour",
        None,
        P1,
    )
    assert (finding.votes, finding.first, finding.last) == (
        201,
        burst[0].accepted_at,
        burst[-1].accepted_at,
    )
    assert finding.window == (HOUR, HOUR + 60 * MINUTE)
    assert await selected(store, finding) == {row.vote_id for row in burst}


async def test_void_votes_do_not_count(store: Store) -> None:
    burst = round_robin(201, HOUR, 59, prefix=P1)
    await store.insert_votes(burst)
    from tests.ledger.store.test_stores import audit

    await store.void(CAMPAIGN.id, [burst[0].vote_id], reason="x", audit=audit())
    assert await find_suspects(store, CAMPAIGN) == []


def baseline(nominee: str, per_minute: int, start: int) -> list[VoteRow]:
    """``per_minute`` votes in each of the 60 minutes before ``start``."""
    return [
        vote(nominee, start - (m + 1) * MINUTE + i * 1000)
        for m in range(60)
        for i in range(per_minute)
    ]


@pytest.mark.parametrize(
    ("usual", "spike", "found"),
    [
        (2, 30, True),  # 30 > 5 x 2, and at least 30
        (2, 29, False),  # > 5 x 2, but under 30
        (10, 51, True),  # 51 > 5 x 10
        (10, 50, False),  # 50 is not above 5 x 10
    ],
)
async def test_a_nominee_spike_over_its_median(
    store: Store, usual: int, spike: int, found: bool
) -> None:
    start = HOUR + 5 * MINUTE
    before = baseline("N04", usual, start)
    burst = [vote("N04", start + i * 1000) for i in range(spike)]
    after = [vote("N04", start + MINUTE + i * 5000) for i in range(usual)]
    result = await findings(store, [*before, *burst, *after])
    if not found:
        assert result == []
        return
    [finding] = result
    assert (finding.signal, finding.nominee, finding.votes) == ("nominee_spike", "N04", spike)
    assert finding.baseline == usual
    assert finding.window == (start, start + MINUTE)
    assert await selected(store, finding) == {row.vote_id for row in burst}


async def test_a_spike_of_several_minutes_in_a_row_is_one_finding(store: Store) -> None:
    start = HOUR + 5 * MINUTE
    burst = [vote("N04", start + i * 2000) for i in range(90)]  # 30 a minute for 3 minutes
    [finding] = await findings(store, burst)
    assert (finding.signal, finding.votes, finding.window) == (
        "nominee_spike",
        90,
        (start, start + 3 * MINUTE),
    )
    assert await selected(store, finding) == {row.vote_id for row in burst}


def prefixes_for(top: int, total: int) -> list[str]:
    """A nominee's votes' prefixes: ``top - 9`` from one network, then one per network."""
    return [P1] * (top - 9) + [f"{n:016x}" for n in range(total - top + 9)]


@pytest.mark.parametrize(
    ("top", "total", "found"),
    [
        (101, 200, True),  # its 10 busiest prefixes: 101 of 200, over half
        (100, 200, False),  # exactly half
        (150, 199, False),  # a nominee under 200 votes
    ],
)
async def test_a_nominee_whose_votes_come_from_few_prefixes(
    store: Store, top: int, total: int, found: bool
) -> None:
    rows = [
        vote("N05", HOUR + i * 2 * MINUTE, prefix=prefix)  # 30 an hour: no other signal
        for i, prefix in enumerate(prefixes_for(top, total))
    ]
    result = await findings(store, rows)
    if not found:
        assert result == []
        return
    [finding] = result
    assert (finding.signal, finding.nominee, finding.prefix_hash) == (
        "top_prefix_share",
        "N05",
        None,
    )
    assert (finding.votes, finding.total, finding.prefixes) == (101, 200, 10)
    chosen = await store.select_valid(CAMPAIGN.id, finding.selection)
    assert len(chosen) == 101
    assert {v.prefix_hash for v in chosen} == set(finding.selection.prefixes)
    assert P1 in finding.selection.prefixes


def sequence(
    phones: int, start: int, order: tuple[str, ...] = ("N03", "N07", "N11"), step: int = 20_000
) -> list[VoteRow]:
    """Each phone votes for ``order`` in turn, 10 s apart; phone k starts ``step`` ms after k-1."""
    rows = []
    for k in range(phones):
        phone = f"{next(_votes):064x}"
        for i, nominee in enumerate(order):
            rows.append(vote(nominee, start + k * step + i * 10_000, phone=phone))
    return rows


@pytest.mark.parametrize(("phones", "found"), [(20, True), (19, False)])
async def test_phones_voting_the_same_ordered_list(store: Store, phones: int, found: bool) -> None:
    rows = sequence(phones, HOUR)  # 20 phones starting within 380 s
    noise = sequence(25, HOUR, order=("N03", "N11", "N07"))[: phones * 3 - 3]  # another order
    noise += sequence(25, HOUR, order=("N03", "N07"))  # two nominees are no list
    result = await findings(store, [*rows, *noise])
    if not found:
        assert result == []
        return
    [finding] = result
    assert (finding.signal, finding.phones, finding.votes) == ("same_sequence", 20, 60)
    assert finding.sequence == ("N03", "N07", "N11")
    assert (finding.first, finding.last) == (rows[0].accepted_at, rows[-1].accepted_at)
    assert await selected(store, finding) == {row.vote_id for row in rows}


async def test_phones_starting_further_apart_than_the_window_are_no_finding(store: Store) -> None:
    # 20 phones, one every 32 s: the 20th starts 608 s after the first, past 10 minutes
    assert await findings(store, sequence(20, HOUR, step=32_000)) == []
    # one every 31 s: 589 s, within
    [finding] = await findings(store, sequence(20, HOUR + 2 * 60 * MINUTE, step=31_000))
    assert finding.phones == 20


def test_the_thresholds_come_from_the_campaign_file() -> None:
    assert make_campaign().suspects == Suspects()  # no [suspects]: the defaults
    text = campaign_toml() + (
        "\n[suspects]\nprefix_votes_per_hour = 20\nnominee_spike_factor = 2.5\n"
        "top_prefix_share = 0.8\nsame_sequence_phones = 5\n"
    )
    suspects = parse_campaign(text).suspects
    assert suspects == Suspects(
        prefix_votes_per_hour=20,
        nominee_spike_factor=2.5,
        top_prefix_share=0.8,
        same_sequence_phones=5,
    )
    texts = [s.zh for s in signals(suspects)]
    assert "超过 20 票" in texts[0]
    assert "2.5 倍" in texts[1]
    assert "超过 80%" in texts[2]
    assert "至少 5 个手机号在 10 分钟内" in texts[3]
    for bad, message in (
        ("top_prefix_share = 1.5", "between 0 and 1"),
        ("prefix_votes_per_hour = 0", "integer >= 1"),
        ("same_sequence_minutes = true", "integer >= 1"),
        ("nominee_spike_factor = -1", "number > 0"),
        ("prefix_per_hour = 20", "unknown key suspects.prefix_per_hour"),
    ):
        with pytest.raises(CampaignError, match=message):
            parse_campaign(campaign_toml() + f"\n[suspects]\n{bad}\n")


def test_the_command_lists_the_findings_in_three_formats(
    tmp_path: Path, redis_server: EmbeddedRedis
) -> None:
    toml = campaign_toml() + "\n[suspects]\nprefix_votes_per_hour = 20\n"
    (tmp_path / "campaign.toml").write_text(toml)
    campaign = parse_campaign(toml)
    settings = ledger_settings(
        tmp_path, None, redis_url=redis_server.url, campaign_path=tmp_path / "campaign.toml"
    )

    async def fill(rows: list[VoteRow]) -> None:
        ledger = build_store(settings)
        await ledger.open()
        try:
            await ledger.insert_votes(rows)
        finally:
            await ledger.close()

    asyncio.run(fill(round_robin(10, HOUR, 30, prefix=P1)))
    code, out, err = cli(settings, "suspects", "--format", "json")
    assert (code, json.loads(out)) == (0, [])  # no findings: exit 0 all the same
    code, out, _ = cli(settings, "suspects")
    assert code == 0
    assert "no findings" in out
    assert "more than 20 votes in one clock hour" in out

    burst = [vote("N02", HOUR + 40 * MINUTE + i * 1000, prefix=P2) for i in range(21)]
    asyncio.run(fill(burst))
    code, out, err = cli(settings, "suspects", "--format", "json")
    assert code == 0, err
    refs = Refs(SECRET, campaign.id)
    assert json.loads(out) == [
        {
            "signal": "prefix_votes_per_hour",
            "nominee": None,
            "prefix_ref": refs(P2),  # as the export under the default label holds it
            "votes": 21,
            "from": "2026-06-01T10:40:00.000+08:00",
            "to": "2026-06-01T10:40:20.000+08:00",
        }
    ]
    assert P2 not in out  # the ledger's own hash stays inside
    code, out, _ = cli(settings, "suspects", "--format", "csv")
    assert code == 0
    [row] = list(csv.DictReader(io.StringIO(out)))
    assert row == {
        "signal": "prefix_votes_per_hour",
        "nominee": "",
        "prefix_ref": refs(P2),
        "votes": "21",
        "from": "2026-06-01T10:40:00.000+08:00",
        "to": "2026-06-01T10:40:20.000+08:00",
    }
    code, out, _ = cli(settings, "suspects")
    assert code == 0
    assert "prefix_votes_per_hour" in out
    assert "1 finding\n" in out
