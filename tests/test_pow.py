from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
from altcha.v1 import ChallengeOptions, create_challenge, solve_challenge

from tests.support import FakeClock
from votesvc.keyring import derive_key
from votesvc.pow import MAX_PAYLOAD_CHARS, PowInvalid, ProofOfWork

SECRET = b"s" * 32
MAX_NUMBER = 1000  # small, so that solving takes milliseconds
TTL = 300


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(time.time())


@pytest.fixture
def pow_(clock: FakeClock) -> ProofOfWork:
    return ProofOfWork(SECRET, MAX_NUMBER, ttl_seconds=TTL, clock=clock)


def solved(challenge: dict[str, Any], /, **changes: Any) -> dict[str, Any]:
    """The widget's solution of ``challenge`` (as a dict), with ``changes`` applied."""
    solution = solve_challenge(
        challenge["challenge"], challenge["salt"], challenge["algorithm"], challenge["maxNumber"]
    )
    assert solution is not None
    fields = {
        "algorithm": challenge["algorithm"],
        "challenge": challenge["challenge"],
        "number": solution.number,
        "salt": challenge["salt"],
        "signature": challenge["signature"],
    }
    return fields | changes


def encoded(fields: object) -> str:
    return base64.b64encode(json.dumps(fields).encode()).decode()


def test_challenge_is_what_the_widget_expects(pow_: ProofOfWork) -> None:
    challenge = pow_.challenge()
    assert set(challenge) == {"algorithm", "challenge", "maxNumber", "salt", "signature"}
    assert challenge["algorithm"] == "SHA-256"
    assert challenge["maxNumber"] == MAX_NUMBER
    assert challenge != pow_.challenge()


def test_a_solution_passes_and_names_its_challenge(pow_: ProofOfWork, clock: FakeClock) -> None:
    challenge = pow_.challenge()
    replay_id, expires = pow_.check(encoded(solved(challenge)))
    assert replay_id == challenge["challenge"]
    assert len(replay_id) == 64
    assert expires == int(clock.now + TTL)
    # Checking is stateless: spending a solution once is the caller's SET NX.
    assert pow_.check(encoded(solved(challenge))) == (replay_id, expires)


def test_a_solution_is_valid_until_its_expiry(pow_: ProofOfWork, clock: FakeClock) -> None:
    payload = encoded(solved(pow_.challenge()))
    _, expires = pow_.check(payload)
    clock.now = expires - 0.5
    assert pow_.check(payload)[1] == expires
    clock.now = expires
    with pytest.raises(PowInvalid, match="expired"):
        pow_.check(payload)


def test_a_wrong_number_is_refused(pow_: ProofOfWork) -> None:
    fields = solved(pow_.challenge())
    fields["number"] = (fields["number"] + 1) % (MAX_NUMBER + 1)
    with pytest.raises(PowInvalid):
        pow_.check(encoded(fields))


def test_a_longer_expiry_in_the_salt_is_refused(pow_: ProofOfWork) -> None:
    challenge = pow_.challenge()
    nonce, _, params = challenge["salt"].partition("?")
    later = str(int(params.split("=")[1].rstrip("&")) + 3600)
    fields = solved(challenge, salt=f"{nonce}?expires={later}&")
    with pytest.raises(PowInvalid):
        pow_.check(encoded(fields))


def test_a_tampered_signature_is_refused(pow_: ProofOfWork) -> None:
    fields = solved(pow_.challenge())
    signature = fields["signature"]
    fields["signature"] = ("0" if signature[0] != "0" else "1") + signature[1:]
    with pytest.raises(PowInvalid, match="signature"):
        pow_.check(encoded(fields))


def test_another_keys_challenge_is_refused(pow_: ProofOfWork, clock: FakeClock) -> None:
    other = ProofOfWork(b"o" * 32, MAX_NUMBER, clock=clock)
    with pytest.raises(PowInvalid, match="signature"):
        pow_.check(encoded(solved(other.challenge())))


def test_sha1_is_refused_even_when_signed_with_our_key(pow_: ProofOfWork, clock: FakeClock) -> None:
    options = ChallengeOptions(
        algorithm="SHA-1",
        max_number=MAX_NUMBER,
        hmac_key=derive_key(SECRET, "pow"),
        expires=None,
    )
    sha1 = create_challenge(options).to_dict()
    with pytest.raises(PowInvalid, match="algorithm"):
        pow_.check(encoded(solved(sha1)))


def test_a_challenge_without_expiry_is_refused(pow_: ProofOfWork) -> None:
    options = ChallengeOptions(max_number=MAX_NUMBER, hmac_key=derive_key(SECRET, "pow"))
    with pytest.raises(PowInvalid, match="expiry"):
        pow_.check(encoded(solved(create_challenge(options).to_dict())))


@pytest.mark.parametrize(
    "change",
    [
        {"number": True},
        {"number": "12"},
        {"number": 1.0},
        {"number": -1},
        {"number": MAX_NUMBER + 1},
        {"algorithm": "SHA-512"},
        {"salt": 5},
        {"signature": None},
        {"challenge": "ABC"},
    ],
)
def test_a_field_of_the_wrong_kind_is_refused(pow_: ProofOfWork, change: dict[str, Any]) -> None:
    with pytest.raises(PowInvalid):
        pow_.check(encoded(solved(pow_.challenge(), **change)))


@pytest.mark.parametrize("missing", ["algorithm", "challenge", "number", "salt", "signature"])
def test_a_missing_field_is_refused(pow_: ProofOfWork, missing: str) -> None:
    fields = solved(pow_.challenge())
    del fields[missing]
    with pytest.raises(PowInvalid, match=missing):
        pow_.check(encoded(fields))


@pytest.mark.parametrize(
    "payload",
    [
        "",
        "not base64!",
        "e30",  # unpadded
        base64.b64encode(b"not json").decode(),
        base64.b64encode(b"\xff\xfe").decode(),
        encoded([1, 2]),
        encoded("a string"),
        "\u00e9" * 8,
        "A" * (MAX_PAYLOAD_CHARS + 4),
    ],
)
def test_garbage_is_refused(pow_: ProofOfWork, payload: str) -> None:
    with pytest.raises(PowInvalid):
        pow_.check(payload)


def test_a_non_string_is_refused(pow_: ProofOfWork) -> None:
    payload: Any = {"number": 1}
    with pytest.raises(PowInvalid, match="not a string"):
        pow_.check(payload)


def test_a_huge_payload_is_refused_before_decoding(pow_: ProofOfWork) -> None:
    fields = solved(pow_.challenge())
    fields["padding"] = "x" * MAX_PAYLOAD_CHARS
    with pytest.raises(PowInvalid, match="longer than"):
        pow_.check(encoded(fields))


@pytest.mark.parametrize(("max_number", "ttl"), [(0, 300), (1000, 0)])
def test_settings_are_checked(max_number: int, ttl: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ProofOfWork(SECRET, max_number, ttl_seconds=ttl)
