from __future__ import annotations

from pathlib import Path

import pytest

from votesvc.errors import ConfigError
from votesvc.settings import Settings


def settings(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env({"VOTESVC_DATA_DIR": str(tmp_path), **env})


def test_defaults(tmp_path: Path) -> None:
    built = settings(tmp_path)
    assert built.redis_url is None
    assert built.tally_refresh == 0.5
    assert built.log_level == "INFO"
    assert len(built.secret) == 64
    assert (tmp_path / "secret").read_text().strip().encode() == built.secret
    assert settings(tmp_path).secret == built.secret  # kept, not regenerated


def test_sqlite_urls_with_a_file_are_accepted(tmp_path: Path) -> None:
    for url in ("sqlite:///var/ledger.db", "sqlite:////tmp/ledger.db", "SQLITE:///x.db"):
        assert settings(tmp_path, VOTESVC_DATABASE_URL=url).database_url == url


def test_values_are_read(tmp_path: Path) -> None:
    built = settings(
        tmp_path,
        VOTESVC_REDIS_URL="redis://10.0.0.1:6379/0",
        VOTESVC_REDIS_CLUSTER="true",
        VOTESVC_SECRET="s3",
        VOTESVC_TALLY_REFRESH="0.25",
        VOTESVC_LOG_LEVEL="debug",
        VOTESVC_CORS_ORIGINS="https://a.example, https://b.example",
    )
    assert built.redis_url == "redis://10.0.0.1:6379/0"
    assert built.redis_cluster is True
    assert built.secret == b"s3"
    assert built.tally_refresh == 0.25
    assert built.log_level == "DEBUG"
    assert built.cors_origins == ("https://a.example", "https://b.example")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"VOTESVC_REDIS_URL": "garbage"}, "VOTESVC_REDIS_URL='garbage' must look like redis://"),
        ({"VOTESVC_REDIS_URL": "http://x"}, "must look like redis://"),
        ({"VOTESVC_LOG_LEVEL": "loud"}, "VOTESVC_LOG_LEVEL='LOUD' must be one of"),
        ({"VOTESVC_REDIS_CLUSTER": "yes"}, "VOTESVC_REDIS_CLUSTER needs VOTESVC_REDIS_URL"),
        ({"VOTESVC_REDIS_CLUSTER": "maybe"}, "must be true or false"),
        ({"VOTESVC_TALLY_REFRESH": "0"}, "VOTESVC_TALLY_REFRESH must be greater than 0"),
        ({"VOTESVC_SHARDS": "-3"}, "VOTESVC_SHARDS='-3' must be a whole number >= 1"),
        ({"VOTESVC_REDIS_APPENDFSYNC": "never"}, "must be one of always, everysec"),
        ({"VOTESVC_DATABASE_URL": "sqlite://x.db"}, "must name its file: sqlite:///relative/path"),
        ({"VOTESVC_DATABASE_URL": "sqlite:///"}, "must name its file"),
        ({"VOTESVC_DATABASE_URL": "mysql://db/votes"}, "must look like postgresql://"),
    ],
)
def test_bad_values_name_the_variable(tmp_path: Path, env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings(tmp_path, VOTESVC_SECRET="s", **env)
    assert message in str(caught.value)
