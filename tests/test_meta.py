"""The campaign's lifelong settings: codes that never move, a fleet that agrees."""

from __future__ import annotations

import pytest

from tests.support import SECRET, make_campaign
from votesvc.campaign import NOMINEE_CODES
from votesvc.errors import ConfigError
from votesvc.meta import CampaignMeta, assign_codes, meta_for, secret_fingerprint
from votesvc.settings import Settings


def test_first_codes_follow_the_sorted_ids() -> None:
    assert assign_codes(["N03", "N01", "N02"], {}) == {"N01": "A", "N02": "B", "N03": "C"}


def test_a_new_nominee_takes_a_code_never_given_and_a_withdrawn_one_keeps_its_own() -> None:
    stored = {"N01": "A", "N02": "B", "N03": "C"}
    # N02 withdrawn, N04 added: N03 keeps C, N04 does not get N02's B.
    codes = assign_codes(["N01", "N03", "N04"], stored)
    assert codes == {"N01": "A", "N02": "B", "N03": "C", "N04": "D"}


def test_a_start_needing_more_codes_than_the_alphabet_holds_is_refused() -> None:
    stored = {f"old{i}": code for i, code in enumerate(NOMINEE_CODES)}
    with pytest.raises(ConfigError, match="nominee new needs a code and all 62 have been given"):
        assign_codes(["new"], stored)


def test_other_shards_or_another_secret_are_refused_naming_which() -> None:
    campaign = make_campaign(nominees=3)
    stored = meta_for(campaign, Settings(secret=SECRET, shards=16), None)
    assert stored == CampaignMeta(
        {"N01": "A", "N02": "B", "N03": "C"}, 16, secret_fingerprint(SECRET)
    )
    with pytest.raises(ConfigError, match="runs with VOTESVC_SHARDS=16; this start has 8"):
        meta_for(campaign, Settings(secret=SECRET, shards=8), stored)
    with pytest.raises(ConfigError, match="runs with another VOTESVC_SECRET"):
        meta_for(campaign, Settings(secret=b"another-secret-of-32-characters!", shards=16), stored)
    assert meta_for(campaign, Settings(secret=SECRET, shards=16), stored) == stored


def test_the_fingerprint_reveals_nothing_of_the_secret() -> None:
    fingerprint = secret_fingerprint(SECRET)
    assert len(fingerprint) == 16
    assert SECRET.hex()[:8] not in fingerprint
    assert fingerprint != secret_fingerprint(SECRET + b"x")
