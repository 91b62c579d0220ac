"""``votesvc export``: what the phone column reveals; an unwritable output leaves nothing."""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path

import pytest

from tests.ledger_fixtures import ledger_settings
from tests.ledger_support import cli, write_campaign
from tests.support import SECRET
from votesvc.ledger.export import ExportFailed, export_ledger, phone_column
from votesvc.ledger.store import Store, StoreUnavailable, VoteRow, build_store
from votesvc.phones import hash_phone
from votesvc.redis_server import EmbeddedRedis
from votesvc.settings import Settings

CAMPAIGN = "test-campaign"
STORED = {
    who: hash_phone(SECRET, number) for who, number in (("A", "13800138000"), ("B", "13900139000"))
}
# phone A votes twice, B once
VOTES = [
    VoteRow(f"{n:032x}", CAMPAIGN, nominee, STORED[who], "c" * 16, 1_780_000_000_000 + n, method)
    for n, (who, nominee, method) in enumerate(
        (("A", "N01", "partner:app12351"), ("B", "N01", "sms"), ("A", "N02", "none"))
    )
]


@pytest.fixture
def settings(tmp_path: Path, redis_server: EmbeddedRedis) -> Settings:
    write_campaign(tmp_path / "campaign.toml")
    return ledger_settings(
        tmp_path, None, redis_url=redis_server.url, campaign_path=tmp_path / "campaign.toml"
    )


def leftovers(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir() if ".part" in path.name)


def test_a_directory_as_the_output_is_refused_with_exit_2(
    settings: Settings, tmp_path: Path
) -> None:
    target = tmp_path / "somedir"
    target.mkdir()
    code, out, err = cli(settings, "export", "--out", str(target))
    assert (code, out) == (2, "")
    assert err == f"votesvc: cannot write {target}: Is a directory\n"
    assert leftovers(tmp_path) == []


def test_a_missing_directory_is_refused_not_created(settings: Settings, tmp_path: Path) -> None:
    target = tmp_path / "typo" / "ledger.csv"
    code, _, err = cli(settings, "export", "--out", str(target))
    assert code == 2
    assert err == (
        f"votesvc: cannot write {target}: the directory {target.parent} does not exist\n"
    )
    assert not target.parent.exists()


def test_a_file_the_system_will_not_create_is_refused(settings: Settings, tmp_path: Path) -> None:
    target = Path("/proc/votesvc-export-test.csv")  # /proc exists; nobody may add a file
    code, out, err = cli(settings, "export", "--out", str(target))
    assert (code, out) == (2, "")
    assert err.startswith(f"votesvc: cannot write {target}: ")
    assert "Redis" not in err
    assert len(err.splitlines()) == 1


async def test_a_failed_export_leaves_no_part_files(store: Store, tmp_path: Path) -> None:
    await store.insert_votes([VoteRow("a" * 32, CAMPAIGN, "N01", "b" * 64, "c" * 16, 1000)])
    target = tmp_path / "out.csv"
    await store.close()  # the database goes away under the export
    with pytest.raises(StoreUnavailable):
        await export_ledger(store, CAMPAIGN, target, phones=phone_column(SECRET, None))
    assert leftovers(tmp_path) == []
    assert not target.exists()
    await store.open()


async def test_the_digest_path_must_not_be_a_directory(store: Store, tmp_path: Path) -> None:
    (tmp_path / "out.csv.sha256").mkdir()
    with pytest.raises(ExportFailed, match=r"out\.csv\.sha256: Is a directory"):
        await export_ledger(
            store, CAMPAIGN, tmp_path / "out.csv", phones=phone_column(SECRET, None)
        )
    assert leftovers(tmp_path) == []


def phone_cells(path: Path) -> list[str]:
    with path.open(newline="") as handle:
        return [row["phone_hash"] for row in csv.DictReader(handle)]


async def test_a_label_links_one_phone_within_and_across_its_files(
    store: Store, tmp_path: Path
) -> None:
    await store.insert_votes(VOTES)
    files = []
    for name in ("monday", "friday"):  # two exports, apart in time, of one ledger
        (tmp_path / name).mkdir()
        phones = phone_column(SECRET, "audit-2026")
        files.append(await export_ledger(store, CAMPAIGN, tmp_path / name / "l.csv", phones=phones))
    first, second = files
    a, b, a_again = phone_cells(first.path)
    assert a == a_again != b  # within the file
    assert phone_cells(second.path) == [a, b, a]  # across files of the label
    assert not {a, b} & set(STORED.values())  # not what Redis and the ledger hold
    # nothing in them depends on when or how often they were written
    assert first.path.read_bytes() == second.path.read_bytes()
    assert first.digest_path.read_bytes() == second.digest_path.read_bytes()


async def test_another_label_gives_other_values(store: Store, tmp_path: Path) -> None:
    await store.insert_votes(VOTES)
    cells = []
    for label in ("press", "auditor"):
        phones = phone_column(SECRET, label)
        done = await export_ledger(store, CAMPAIGN, tmp_path / f"{label}.csv", phones=phones)
        cells.append(phone_cells(done.path))
    press, auditor = cells
    assert not set(press) & set(auditor)
    assert press[0] == press[2]
    assert auditor[0] == auditor[2]


async def test_internal_writes_the_stored_hash(store: Store, tmp_path: Path) -> None:
    await store.insert_votes(VOTES)
    done = await export_ledger(
        store, CAMPAIGN, tmp_path / "i.csv", phones=phone_column(SECRET, None)
    )
    assert phone_cells(done.path) == [STORED["A"], STORED["B"], STORED["A"]]


async def test_each_row_ends_with_the_vote_s_verification_method(
    store: Store, tmp_path: Path
) -> None:
    await store.insert_votes(VOTES)
    done = await export_ledger(
        store, CAMPAIGN, tmp_path / "m.csv", phones=phone_column(SECRET, None)
    )
    with done.path.open(newline="") as handle:
        header, *rows = csv.reader(handle)
    assert header == [
        "vote_id",
        "nominee",
        "phone_hash",
        "accepted_at",
        "void",
        "void_reason",
        "method",
    ]
    assert [row[-1] for row in rows] == ["partner:app12351", "sms", "none"]


def test_the_command_keys_the_phone_column_for_the_campaign_unless_told(
    settings: Settings, tmp_path: Path
) -> None:
    async def fill() -> None:
        ledger = build_store(settings)
        await ledger.open()
        try:
            await ledger.insert_votes(VOTES)
        finally:
            await ledger.close()

    asyncio.run(fill())
    stored = [STORED["A"], STORED["B"], STORED["A"]]
    for argv, label in (
        ((), CAMPAIGN),  # the default label: the campaign id
        (("--label", "press-2026"), "press-2026"),
        (("--internal",), None),
    ):
        target = tmp_path / f"{label}.csv"
        code, out, err = cli(settings, "export", "--out", str(target), *argv)
        assert code == 0, err
        assert phone_cells(target) == [phone_column(SECRET, label)(cell) for cell in stored]
        if label is None:
            assert "phone_hash is the stored hash: keep this file inside the organisation" in out
        else:
            assert f"phone_hash is keyed for the label {label!r}" in out
    code, _, err = cli(settings, "export", "--out", str(tmp_path / "x.csv"), "--label", " ")
    assert (code, err) == (2, "votesvc: the export label (--label) must not be empty\n")
