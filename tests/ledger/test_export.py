"""``votesvc export``: one format (BOM, CRLF, Chinese names, zone-local times), what the
ref columns reveal, byte-identical repeats, stdout without a BOM; an unwritable output
leaves nothing."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ledger_fixtures import ledger_settings
from tests.ledger_support import REPO, cli, service_env
from tests.support import SECRET
from votesvc.campaign import Campaign, demo_campaign_text, parse_campaign
from votesvc.ledger.export import (
    BOM,
    COLUMNS,
    ExportFailed,
    Refs,
    export_digest,
    export_ledger,
)
from votesvc.ledger.store import AuditEntry, Store, StoreUnavailable, VoteRow, build_store
from votesvc.phones import hash_phone
from votesvc.redis_server import EmbeddedRedis
from votesvc.settings import Settings

CAMPAIGN: Campaign = parse_campaign(demo_campaign_text(), source="demo")
STORED = {
    who: hash_phone(SECRET, number) for who, number in (("A", "13800138000"), ("B", "13900139000"))
}
PREFIX = {"A": "1a2b3c4d5e6f7081", "B": "99aa88bb77cc66dd"}
START = 1_780_000_000_000  # 2026-05-28T20:26:40+00:00
# phone A votes twice (from its network), B once
VOTES = [
    VoteRow(
        f"{n:032x}",
        CAMPAIGN.id,
        nominee,
        STORED[who],
        "c" * 16,
        START + n,
        method,
        PREFIX[who],
    )
    for n, (who, nominee, method) in enumerate(
        (("A", "N01", "partner:app12351"), ("B", "N01", "sms"), ("A", "N02", "none"))
    )
]


@pytest.fixture
def settings(tmp_path: Path, redis_server: EmbeddedRedis) -> Settings:
    (tmp_path / "campaign.toml").write_text(demo_campaign_text(), "utf-8")
    return ledger_settings(
        tmp_path, None, redis_url=redis_server.url, campaign_path=tmp_path / "campaign.toml"
    )


def fill(settings: Settings, rows: list[VoteRow]) -> None:
    async def insert() -> None:
        ledger = build_store(settings)
        await ledger.open()
        try:
            await ledger.insert_votes(rows)
        finally:
            await ledger.close()

    asyncio.run(insert())


def leftovers(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir() if ".part" in path.name)


def read_rows(data: bytes) -> list[dict[str, str]]:
    """The CSV as Excel would: its BOM says UTF-8."""
    assert data.startswith(BOM)
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))


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
    await store.insert_votes(VOTES)
    target = tmp_path / "out.csv"
    await store.close()  # the database goes away under the export
    with pytest.raises(StoreUnavailable):
        await export_ledger(store, CAMPAIGN, target, refs=Refs(SECRET, None))
    assert leftovers(tmp_path) == []
    assert not target.exists()
    await store.open()


async def test_the_digest_path_must_not_be_a_directory(store: Store, tmp_path: Path) -> None:
    (tmp_path / "out.csv.sha256").mkdir()
    with pytest.raises(ExportFailed, match=r"out\.csv\.sha256: Is a directory"):
        await export_ledger(store, CAMPAIGN, tmp_path / "out.csv", refs=Refs(SECRET, None))
    assert leftovers(tmp_path) == []


async def test_the_format_opens_in_excel_with_chinese_names_and_local_times(
    store: Store, tmp_path: Path
) -> None:
    await store.insert_votes(VOTES)
    await store.void(CAMPAIGN.id, [VOTES[1].vote_id], reason="同一网段刷票, 已核实", audit=_audit())
    done = await export_ledger(store, CAMPAIGN, tmp_path / "v.csv", refs=Refs(SECRET, "审计"))
    data = done.path.read_bytes()
    assert data.startswith(BOM + b"vote_id,nominee_id,nominee_name,trade,accepted_at,")
    assert data.count(b"\r\n") == data.count(b"\n") == 4  # CRLF, no bare LF
    assert b"#" not in data  # no comment line
    assert hashlib.sha256(data).hexdigest() == done.sha256
    assert (tmp_path / "v.csv.sha256").read_text() == f"{done.sha256}  v.csv\n"
    assert (done.rows, done.void) == (3, 1)
    rows = read_rows(data)
    assert (
        tuple(rows[0])
        == COLUMNS
        == (
            "vote_id",
            "nominee_id",
            "nominee_name",
            "trade",
            "accepted_at",
            "phone_ref",
            "prefix_ref",
            "method",
            "void",
            "void_reason",
        )
    )
    n01 = CAMPAIGN.nominee("N01")
    assert n01 is not None
    assert (rows[0]["nominee_id"], rows[0]["nominee_name"], rows[0]["trade"]) == (
        "N01",
        n01.name,
        n01.trade,
    )
    assert rows[0]["nominee_name"] == "王建国"
    assert rows[0]["accepted_at"] == "2026-05-29T04:26:40.000+08:00"  # Asia/Shanghai
    assert [r["method"] for r in rows] == ["partner:app12351", "sms", "none"]
    assert [(r["void"], r["void_reason"]) for r in rows] == [
        ("false", ""),
        ("true", "同一网段刷票, 已核实"),
        ("false", ""),
    ]
    digest = await export_digest(store, CAMPAIGN, Refs(SECRET, "审计"))
    assert (digest.sha256, digest.rows, digest.void) == (done.sha256, 3, 1)


def _audit() -> AuditEntry:
    return AuditEntry(at=1, actor="ann", action="void", detail="{}", reason="x")


async def test_a_label_links_one_phone_and_one_network_within_and_across_its_files(
    store: Store, tmp_path: Path
) -> None:
    await store.insert_votes(VOTES)
    files = []
    for name in ("monday", "friday"):  # two exports, apart in time, of one ledger
        (tmp_path / name).mkdir()
        refs = Refs(SECRET, "audit-2026")
        files.append(await export_ledger(store, CAMPAIGN, tmp_path / name / "l.csv", refs=refs))
    first, second = (read_rows(done.path.read_bytes()) for done in files)
    a, b, a_again = (row["phone_ref"] for row in first)
    assert a == a_again != b  # within the file
    assert [row["phone_ref"] for row in second] == [a, b, a]  # across files of the label
    net_a, net_b, net_a_again = (row["prefix_ref"] for row in first)
    assert net_a == net_a_again != net_b
    assert not {a, b, net_a, net_b} & {*STORED.values(), *PREFIX.values()}
    # nothing in them depends on when or how often they were written
    assert files[0].path.read_bytes() == files[1].path.read_bytes()
    assert files[0].digest_path.read_bytes() == files[1].digest_path.read_bytes()


async def test_another_label_gives_other_values(store: Store, tmp_path: Path) -> None:
    await store.insert_votes(VOTES)
    cells = []
    for label in ("press", "auditor"):
        done = await export_ledger(
            store, CAMPAIGN, tmp_path / f"{label}.csv", refs=Refs(SECRET, label)
        )
        cells.append([row["phone_ref"] for row in read_rows(done.path.read_bytes())])
    press, auditor = cells
    assert not set(press) & set(auditor)
    assert press[0] == press[2]
    assert auditor[0] == auditor[2]


async def test_internal_writes_the_stored_hashes(store: Store, tmp_path: Path) -> None:
    await store.insert_votes(
        [*VOTES, VOTES[0]._replace(vote_id="f" * 32, accepted_at=START + 9, prefix_hash="")]
    )
    done = await export_ledger(store, CAMPAIGN, tmp_path / "i.csv", refs=Refs(SECRET, None))
    rows = read_rows(done.path.read_bytes())
    assert [r["phone_ref"] for r in rows] == [STORED["A"], STORED["B"], STORED["A"], STORED["A"]]
    assert [r["prefix_ref"] for r in rows] == [PREFIX["A"], PREFIX["B"], PREFIX["A"], ""]


def test_the_command_keys_the_refs_for_the_campaign_unless_told(
    settings: Settings, tmp_path: Path
) -> None:
    fill(settings, VOTES)
    stored = [STORED["A"], STORED["B"], STORED["A"]]
    for argv, label in (
        ((), CAMPAIGN.id),  # the default label: the campaign id
        (("--label", "press-2026"), "press-2026"),
        (("--internal",), None),
    ):
        target = tmp_path / f"{label}.csv"
        code, out, err = cli(settings, "export", "--out", str(target), *argv)
        assert code == 0, err
        rows = read_rows(target.read_bytes())
        refs = Refs(SECRET, label)
        assert [r["phone_ref"] for r in rows] == [refs(cell) for cell in stored]
        if label is None:
            assert "are the stored hashes: keep this file inside the organisation" in out
        else:
            assert f"phone_ref and prefix_ref are keyed for the label {label!r}" in out
    code, _, err = cli(settings, "export", "--out", str(tmp_path / "x.csv"), "--label", " ")
    assert (code, err) == (2, "votesvc: the export label (--label) must not be empty\n")


def test_stdout_gets_the_same_csv_without_a_bom(settings: Settings, tmp_path: Path) -> None:
    fill(settings, VOTES)
    target = tmp_path / "file.csv"
    assert cli(settings, "export", "--out", str(target))[0] == 0
    done = subprocess.run(
        [sys.executable, "-m", "votesvc", "export", "--out", "-"],
        env=service_env(settings),
        cwd=REPO,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert not done.stdout.startswith(BOM)
    assert BOM + done.stdout == target.read_bytes()
    assert b"3 votes (0 void) written to stdout" in done.stderr
    assert hashlib.sha256(done.stdout).hexdigest().encode() in done.stderr
