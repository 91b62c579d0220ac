"""``votesvc export``: an output that cannot be written is refused, and leaves nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ledger_fixtures import ledger_settings
from tests.ledger_support import cli, write_campaign
from votesvc.ledger.export import ExportFailed, export_ledger
from votesvc.ledger.store import Store, StoreUnavailable, VoteRow
from votesvc.redis_server import EmbeddedRedis
from votesvc.settings import Settings

CAMPAIGN = "test-campaign"


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
        await export_ledger(store, CAMPAIGN, target)
    assert leftovers(tmp_path) == []
    assert not target.exists()
    await store.open()


async def test_the_digest_path_must_not_be_a_directory(store: Store, tmp_path: Path) -> None:
    (tmp_path / "out.csv.sha256").mkdir()
    with pytest.raises(ExportFailed, match=r"out\.csv\.sha256: Is a directory"):
        await export_ledger(store, CAMPAIGN, tmp_path / "out.csv")
    assert leftovers(tmp_path) == []
