from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

from votesvc.errors import ConfigError
from votesvc.settings import PLACEHOLDER_SECRET, SECRET_MIN_LENGTH, Settings, database_from_env

REPO = Path(__file__).resolve().parent.parent
LONG_SECRET = "0123456789abcdef" * 4  # 64 characters, like a generated one


def settings(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env({"VOTESVC_DATA_DIR": str(tmp_path), **env})


def test_defaults(tmp_path: Path) -> None:
    built = settings(tmp_path)
    assert built.redis_url is None
    assert built.tally_refresh == 0.5
    assert built.log_level == "INFO"
    assert len(bytes.fromhex(built.secret.decode())) == 32  # 64 hex digits, 32 random bytes
    assert (tmp_path / "secret").read_text().strip().encode() == built.secret
    assert settings(tmp_path).secret == built.secret  # kept, not regenerated


def test_allow_eviction_is_a_flag_off_by_default(tmp_path: Path) -> None:
    assert settings(tmp_path).allow_eviction is False
    assert settings(tmp_path, VOTESVC_ALLOW_EVICTION="true").allow_eviction is True
    with pytest.raises(ConfigError, match="VOTESVC_ALLOW_EVICTION='maybe' must be true or false"):
        settings(tmp_path, VOTESVC_ALLOW_EVICTION="maybe")


def test_sqlite_urls_with_a_file_are_accepted(tmp_path: Path) -> None:
    for url in ("sqlite:///var/ledger.db", "sqlite:////tmp/ledger.db", "SQLITE:///x.db"):
        assert settings(tmp_path, VOTESVC_DATABASE_URL=url).database_url == url


def test_values_are_read(tmp_path: Path) -> None:
    built = settings(
        tmp_path,
        VOTESVC_REDIS_URL="redis://10.0.0.1:6379/0",
        VOTESVC_REDIS_CLUSTER="true",
        VOTESVC_SECRET=LONG_SECRET,
        VOTESVC_TALLY_REFRESH="0.25",
        VOTESVC_LOG_LEVEL="debug",
        VOTESVC_CORS_ORIGINS="https://a.example, https://b.example",
    )
    assert built.redis_url == "redis://10.0.0.1:6379/0"
    assert built.redis_cluster is True
    assert built.secret == LONG_SECRET.encode()
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
        settings(tmp_path, VOTESVC_SECRET=LONG_SECRET, **env)
    assert message in str(caught.value)


def test_the_placeholder_is_the_one_the_example_environment_ships() -> None:
    lines = (REPO / "deploy" / "votesvc.env.example").read_text().splitlines()
    assert f"VOTESVC_SECRET={PLACEHOLDER_SECRET}" in lines


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        (
            PLACEHOLDER_SECRET,
            "VOTESVC_SECRET is still the placeholder of deploy/votesvc.env.example",
        ),
        ("x" * (SECRET_MIN_LENGTH - 1), "VOTESVC_SECRET is too short (31 characters, at least 32)"),
        ("hunter2", "VOTESVC_SECRET is too short (7 characters"),
    ],
)
def test_a_weak_secret_stops_start_up(tmp_path: Path, secret: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings(tmp_path, VOTESVC_SECRET=secret)
    assert str(caught.value).startswith(message)
    assert "token_hex(32)" in str(caught.value)  # says how to make a good one
    assert secret not in str(caught.value)  # a secret is never echoed
    assert not (tmp_path / "secret").exists()  # no secret generated behind the operator's back


def test_a_secret_of_the_least_length_is_accepted(tmp_path: Path) -> None:
    secret = "k" * SECRET_MIN_LENGTH
    assert settings(tmp_path, VOTESVC_SECRET=secret).secret == secret.encode()


def test_a_short_secret_in_the_data_dir_stops_start_up(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("typed-by-hand\n")
    with pytest.raises(ConfigError, match=r"secret is too short \(13 characters"):
        settings(tmp_path)


def test_the_database_is_named_from_the_environment_without_creating_anything(
    tmp_path: Path,
) -> None:
    for n, extra in enumerate(({}, {"VOTESVC_DATABASE_URL": "postgresql://vote@db/votes"})):
        env = {"VOTESVC_DATA_DIR": str(tmp_path / f"data{n}"), **extra}
        named = database_from_env(env)
        assert not (tmp_path / f"data{n}").exists()  # the ledger commands look before anything
        assert named == Settings.from_env(env).database


def _key(byte: int, size: int = 32) -> str:
    return base64.urlsafe_b64encode(bytes([byte]) * size).decode().rstrip("=")


def test_verification_settings_are_read(tmp_path: Path) -> None:
    secret_file = tmp_path / "webhook.secret"
    secret_file.write_text("from-a-file-0123456789\nignored second line\n")
    built = settings(
        tmp_path,
        VOTESVC_SECRET=LONG_SECRET,
        VOTESVC_SMS_SENDER="webhook:https://sms.example/send",
        VOTESVC_SMS_WEBHOOK_SECRET_FILE=str(secret_file),
        VOTESVC_PARTNER_KEYS=f"app12351={_key(1)}, wechat={_key(2, 40)}",
    )
    assert built.sms_sender == "webhook:https://sms.example/send"
    assert built.sms_webhook_secret == b"from-a-file-0123456789"
    assert built.partner_keys == (("app12351", b"\x01" * 32), ("wechat", b"\x02" * 40))
    assert "from-a-file" not in repr(built)
    assert _key(1) not in repr(built)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"VOTESVC_PARTNER_KEYS": "app12351"}, "expected ID=KEY pairs"),
        ({"VOTESVC_PARTNER_KEYS": f"a={_key(1, 31)}"}, "decodes to 31 bytes, at least 32"),
        ({"VOTESVC_PARTNER_KEYS": "a=***not-base64***"}, "the key of 'a' is not base64url"),
        ({"VOTESVC_PARTNER_KEYS": f"a={_key(1)},a={_key(2)}"}, "partner 'a' is listed twice"),
        (
            {"VOTESVC_SMS_WEBHOOK_SECRET": "x" * 20, "VOTESVC_SMS_WEBHOOK_SECRET_FILE": "/x"},
            "not both",
        ),
        ({"VOTESVC_SMS_WEBHOOK_SECRET_FILE": "/nonexistent/secret"}, "cannot read it"),
    ],
)
def test_bad_verification_settings(tmp_path: Path, env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        settings(tmp_path, VOTESVC_SECRET=LONG_SECRET, **env)


def test_embed_origins_are_read_and_nothing_else_reaches_the_header(tmp_path: Path) -> None:
    assert settings(tmp_path).embed_origins == ()
    built = settings(
        tmp_path, VOTESVC_EMBED_ORIGINS=" https://News.example.com/, https://*.media.example:8443 "
    )
    assert built.embed_origins == ("https://news.example.com", "https://*.media.example:8443")
    for junk in (
        "https://a.example; script-src *",
        "news.example.com",
        "https://a.example/path",
        "'self'",
        "*",
        "ftp://a.example",
    ):
        with pytest.raises(ConfigError, match=r"VOTESVC_EMBED_ORIGINS: .* is not an origin"):
            settings(tmp_path, VOTESVC_EMBED_ORIGINS=junk)
