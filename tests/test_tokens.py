from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import jwt
import pytest

from tests.support import FakeClock
from votesvc.errors import ConfigError
from votesvc.keyring import derive_key
from votesvc.phones import hash_phone
from votesvc.tokens import MAX_TOKEN_CHARS, TokenInvalid, Voter, VoterTokens

SECRET = b"s" * 32
CAMPAIGN = "demo-2026"
TTL = 600
START = 1_800_000_000
CLOSES_AT = START + 86_400.5
PARTNER_KEY = b"p" * 32
PHONE = "13800138000"
PHONE_HASH = hash_phone(SECRET, PHONE)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(float(START))


@pytest.fixture
def tokens(clock: FakeClock) -> VoterTokens:
    return VoterTokens(
        CAMPAIGN,
        SECRET,
        ttl_seconds=TTL,
        closes_at=CLOSES_AT,
        partners={"app1": PARTNER_KEY, "app2": b"q" * 32},
        clock=clock,
    )


def partner_token(key: bytes = PARTNER_KEY, algorithm: str = "HS256", /, **changes: Any) -> str:
    """A partner's token, as its server would make it with PyJWT; ``None`` drops a claim."""
    claims = {"iss": "app1", "aud": CAMPAIGN, "sub": "user-42", "iat": START, "exp": START + TTL}
    claims |= changes
    payload = {name: value for name, value in claims.items() if value is not None}
    return jwt.encode(payload, key, algorithm=algorithm)


def own_token(**changes: Any) -> str:
    claims = {"iss": "votesvc", "aud": CAMPAIGN, "sub": PHONE_HASH, "iat": START, "exp": START + 60}
    claims |= changes
    return jwt.encode(claims, derive_key(SECRET, "voter-token"), algorithm="HS256")


def test_an_issued_token_names_its_voter(tokens: VoterTokens) -> None:
    token, exp = tokens.issue(PHONE_HASH)
    assert exp == START + TTL
    assert tokens.voter(token) == Voter(PHONE_HASH, "sms")
    claims = jwt.decode(
        token,
        derive_key(SECRET, "voter-token"),
        algorithms=["HS256"],
        audience=CAMPAIGN,
        options={"verify_iat": False, "verify_exp": False},  # START is not now
    )
    assert claims == {
        "iss": "votesvc",
        "aud": CAMPAIGN,
        "sub": PHONE_HASH,
        "iat": START,
        "exp": exp,
    }
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


def test_exp_is_capped_at_the_close(tokens: VoterTokens, clock: FakeClock) -> None:
    clock.now = CLOSES_AT - 100
    token, exp = tokens.issue(PHONE_HASH)
    assert exp == int(CLOSES_AT) < clock.now + TTL
    assert jwt.decode(token, options={"verify_signature": False})["exp"] == exp


def test_issue_wants_a_phone_hash(tokens: VoterTokens) -> None:
    with pytest.raises(ValueError, match="hex"):
        tokens.issue(PHONE_HASH.upper())


def test_an_expired_token_is_refused_even_from_the_cache(
    tokens: VoterTokens, clock: FakeClock
) -> None:
    token, exp = tokens.issue(PHONE_HASH)
    first = tokens.voter(token)
    clock.now = exp - 0.5
    assert tokens.voter(token) is first  # from the cache
    clock.now = exp
    with pytest.raises(TokenInvalid, match="expired"):
        tokens.voter(token)
    with pytest.raises(TokenInvalid, match="expired"):  # dropped from the cache, checked again
        tokens.voter(token)


def test_an_expired_token_is_refused_before_caching(tokens: VoterTokens, clock: FakeClock) -> None:
    token, exp = tokens.issue(PHONE_HASH)
    clock.now = exp + 1
    with pytest.raises(TokenInvalid, match="expired"):
        tokens.voter(token)


def test_a_cache_hit_skips_verification(tokens: VoterTokens) -> None:
    token, _ = tokens.issue(PHONE_HASH)
    first = tokens.voter(token)
    # A fresh check would build a new (equal) Voter: the same object means a hit.
    assert tokens.voter(token) is first
    other, _ = tokens.issue(hash_phone(SECRET, "13900139000"))
    assert tokens.voter(other) is not tokens.voter(token)


def test_the_cache_drops_its_oldest_entry_when_full(clock: FakeClock) -> None:
    small = VoterTokens(
        CAMPAIGN,
        SECRET,
        ttl_seconds=TTL,
        closes_at=CLOSES_AT,
        partners={},
        clock=clock,
        cache_max=2,
    )
    issued = [small.issue(hash_phone(SECRET, f"1380013800{n}"))[0] for n in range(3)]
    voters = [small.voter(token) for token in issued]  # the third pushes the first out
    assert small.voter(issued[2]) is voters[2]
    assert small.voter(issued[1]) is voters[1]
    again = small.voter(issued[0])
    assert again == voters[0]
    assert again is not voters[0]


def test_a_refused_token_is_not_cached(tokens: VoterTokens) -> None:
    token, _ = tokens.issue(PHONE_HASH)
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    for _ in range(2):
        with pytest.raises(TokenInvalid):
            tokens.voter(tampered)


def with_header(token: str, header: dict[str, Any], key: bytes = PARTNER_KEY) -> str:
    """``token``'s payload under ``header``, with an HS256 MAC under ``key`` whatever
    the header says: what an attacker who hopes for another algorithm would send."""
    head = jwt.utils.base64url_encode(json.dumps(header).encode()).decode()
    signing_input = f"{head}.{token.split('.')[1]}"
    mac = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{jwt.utils.base64url_encode(mac).decode()}"


def test_a_tampered_token_is_refused(tokens: VoterTokens) -> None:
    token, _ = tokens.issue(PHONE_HASH)
    head, _, signature = token.split(".")
    other = own_token(sub=hash_phone(SECRET, "13900139000")).split(".")[1]
    with pytest.raises(TokenInvalid, match="bad signature"):
        tokens.voter(f"{head}.{other}.{signature}")
    forged = jwt.encode(
        {"iss": "votesvc", "aud": CAMPAIGN, "sub": PHONE_HASH, "iat": START, "exp": START + 60},
        b"x" * 32,
        algorithm="HS256",
    )
    with pytest.raises(TokenInvalid, match="bad signature"):
        tokens.voter(forged)


def test_a_padded_signature_is_accepted(tokens: VoterTokens) -> None:
    # PyJWT takes a signature with its base64 padding (some issuers send it); so do we.
    assert tokens.voter(partner_token() + "=").method == "partner:app1"


def test_alg_none_is_refused(tokens: VoterTokens) -> None:
    unsigned = jwt.encode(
        {"iss": "votesvc", "aud": CAMPAIGN, "sub": PHONE_HASH, "iat": START, "exp": START + 60},
        None,
        algorithm="none",
    )
    with pytest.raises(TokenInvalid, match="bad signature"):
        tokens.voter(unsigned)
    with pytest.raises(TokenInvalid, match="InvalidAlgorithmError"):
        tokens.voter(with_header(partner_token(), {"alg": "none", "typ": "JWT"}))


@pytest.mark.parametrize("algorithm", ["HS384", "HS512", "RS256", "ES256", "PS256", "hs256"])
def test_only_hs256_is_accepted(tokens: VoterTokens, algorithm: str) -> None:
    # The header names another algorithm, the MAC is HS256 under the partner's key:
    # the classic confusion (the key read as an RSA public key, say) must fail.
    with pytest.raises(TokenInvalid, match="InvalidAlgorithmError"):
        tokens.voter(with_header(partner_token(), {"alg": algorithm, "typ": "JWT"}))
    assert tokens.voter(with_header(partner_token(), {"alg": "HS256", "typ": "JWT"}))


@pytest.mark.parametrize("algorithm", ["HS384", "HS512"])
def test_tokens_signed_with_other_hmacs_are_refused(tokens: VoterTokens, algorithm: str) -> None:
    with pytest.raises(TokenInvalid, match="bad signature"):
        tokens.voter(partner_token(PARTNER_KEY * 2, algorithm))


@pytest.mark.parametrize(
    "token",
    ["", "abc", "a.b.c", "a.b", "...", "\u00e9.\u00e9.\u00e9", "x" * (MAX_TOKEN_CHARS + 1)],
)
def test_malformed_tokens_are_refused(tokens: VoterTokens, token: str) -> None:
    with pytest.raises(TokenInvalid):
        tokens.voter(token)


def test_a_long_token_is_refused_even_if_valid(tokens: VoterTokens) -> None:
    token = partner_token(padding="x" * MAX_TOKEN_CHARS)
    with pytest.raises(TokenInvalid, match="at most"):
        tokens.voter(token)


def test_another_campaigns_token_is_refused(tokens: VoterTokens) -> None:
    with pytest.raises(TokenInvalid, match="Audience"):
        tokens.voter(own_token(aud="other-campaign"))
    with pytest.raises(TokenInvalid, match="Audience"):
        tokens.voter(partner_token(aud="other-campaign"))
    with pytest.raises(TokenInvalid, match="Audience"):
        tokens.voter(partner_token(aud=[CAMPAIGN, "other-campaign"]))


def test_an_unknown_partner_is_refused(tokens: VoterTokens) -> None:
    with pytest.raises(TokenInvalid, match="unknown issuer 'app3'"):
        tokens.voter(partner_token(iss="app3"))
    claims = {"iss": ["app1"], "aud": CAMPAIGN, "sub": "u", "iat": START, "exp": START + 60}
    listed = jwt.PyJWS().encode(json.dumps(claims).encode(), PARTNER_KEY, algorithm="HS256")
    with pytest.raises(TokenInvalid, match="unknown issuer"):
        tokens.voter(listed)


def test_a_token_signed_with_another_partners_key_is_refused(tokens: VoterTokens) -> None:
    with pytest.raises(TokenInvalid, match="bad signature"):
        tokens.voter(partner_token(b"q" * 32))  # app2's key, iss app1


def test_a_partner_token_with_a_phone_is_that_phones_voter(tokens: VoterTokens) -> None:
    for number in (PHONE, "+8613800138000", "+86 138-0013-8000"):
        voter = tokens.voter(partner_token(phone_number=number))
        assert voter == Voter(PHONE_HASH, "partner:app1")
    sms_token, _ = tokens.issue(PHONE_HASH)
    assert tokens.voter(sms_token).phone_hash == PHONE_HASH


def test_a_partner_token_without_a_phone_is_the_partners_user(tokens: VoterTokens) -> None:
    voter = tokens.voter(partner_token())
    expected = hmac.new(SECRET, b"partner-user:app1:user-42", hashlib.sha256).hexdigest()
    assert voter == Voter(expected, "partner:app1")
    other_partner = tokens.voter(partner_token(b"q" * 32, iss="app2"))
    assert other_partner.method == "partner:app2"
    assert other_partner.phone_hash != expected


@pytest.mark.parametrize("phone", ["12800138000", "1380013800", "", 13800138000, None, ["x"]])
def test_a_partner_token_with_a_bad_phone_is_refused(tokens: VoterTokens, phone: object) -> None:
    token = jwt.encode(
        {
            "iss": "app1",
            "aud": CAMPAIGN,
            "sub": "user-42",
            "iat": START,
            "exp": START + TTL,
            "phone_number": phone,
        },
        PARTNER_KEY,
        algorithm="HS256",
    )
    with pytest.raises(TokenInvalid, match="phone_number"):
        tokens.voter(token)


def test_a_partner_token_lasting_longer_than_the_ttl_is_refused(tokens: VoterTokens) -> None:
    assert tokens.voter(partner_token(iat=START - 10, exp=START - 10 + TTL))
    with pytest.raises(TokenInvalid, match="lasts longer"):
        tokens.voter(partner_token(exp=START + TTL + 1))


def test_a_partner_gets_30_seconds_of_leeway(tokens: VoterTokens, clock: FakeClock) -> None:
    assert tokens.voter(partner_token(iat=START + 30, exp=START + 60))
    with pytest.raises(TokenInvalid, match="not valid yet"):
        tokens.voter(partner_token(iat=START + 31, exp=START + 60))
    with pytest.raises(TokenInvalid, match="not valid yet"):
        tokens.voter(partner_token(nbf=START + 31))
    late = partner_token(iat=START - TTL, exp=START - 29)
    voter = tokens.voter(late)
    clock.now = START + 0.9
    assert tokens.voter(late) is voter
    clock.now = START + 1
    with pytest.raises(TokenInvalid, match="expired"):
        tokens.voter(late)
    with pytest.raises(TokenInvalid, match="expired"):
        tokens.voter(partner_token(iat=START - TTL, exp=START - 30))


@pytest.mark.parametrize("claim", ["iss", "aud", "sub", "iat", "exp"])
def test_a_missing_claim_is_refused(tokens: VoterTokens, claim: str) -> None:
    with pytest.raises(TokenInvalid):
        tokens.voter(partner_token(**{claim: None}))


@pytest.mark.parametrize(
    "changes",
    [
        {"iat": float(START)},
        {"exp": float(START + 60)},
        {"iat": True},
        {"exp": str(START + 60)},
        {"nbf": "0"},
        {"sub": ""},
        {"sub": 42},
        {"sub": "x" * 257},
    ],
)
def test_claims_of_the_wrong_kind_are_refused(tokens: VoterTokens, changes: dict[str, Any]) -> None:
    with pytest.raises(TokenInvalid):
        tokens.voter(partner_token(**changes))


@pytest.mark.parametrize("sub", ["user-42", PHONE_HASH.upper(), PHONE_HASH[:-1]])
def test_our_own_tokens_carry_a_phone_hash(tokens: VoterTokens, sub: str) -> None:
    with pytest.raises(TokenInvalid, match="phone hash"):
        tokens.voter(own_token(sub=sub))


@pytest.mark.parametrize(
    ("partners", "problem"),
    [
        ({"votesvc": PARTNER_KEY}, "partner id"),
        ({"": PARTNER_KEY}, "partner id"),
        ({"a:b": PARTNER_KEY}, "partner id"),
        ({"app1": b"short"}, "32 bytes"),
    ],
)
def test_partners_are_checked(partners: dict[str, bytes], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        VoterTokens(CAMPAIGN, SECRET, ttl_seconds=TTL, closes_at=CLOSES_AT, partners=partners)
