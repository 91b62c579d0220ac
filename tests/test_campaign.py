from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import campaign_toml
from votesvc.campaign import load_campaign, parse_campaign
from votesvc.errors import CampaignError


def test_the_demo_campaign_loads() -> None:
    campaign = load_campaign(None)
    assert campaign.id == "craftsman-2026"
    assert len(campaign.nominees) == 30
    assert len({n.trade for n in campaign.nominees}) == 10
    assert campaign.timezone.key == "Asia/Shanghai"
    assert campaign.rules.votes_per_phone_per_day == 10
    assert campaign.nominee("N07") is not None
    assert len({n.code for n in campaign.nominees}) == 30


def test_codes_follow_ids_not_file_order() -> None:
    text = campaign_toml(nominees=3)
    reordered = text.replace('id = "N01"', 'id = "TMP"').replace('id = "N03"', 'id = "N01"')
    reordered = reordered.replace('id = "TMP"', 'id = "N03"')
    first, second = parse_campaign(text), parse_campaign(reordered)
    for nid in ("N01", "N02", "N03"):
        one, two = first.nominee(nid), second.nominee(nid)
        assert one is not None
        assert two is not None
        assert one.code == two.code


_FULL = campaign_toml()
NO_RULES = _FULL[: _FULL.index("[rules]")] + _FULL[_FULL.index("[[nominees]]") :]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[campaign\n", "invalid TOML"),
        (campaign_toml().replace('title = "Test campaign"\n', ""), "campaign.title is missing"),
        (campaign_toml().replace('id = "N02"', 'id = "N01"'), "duplicate nominee id 'N01'"),
        (
            campaign_toml(
                opens_at="2027-01-01T00:00:00+08:00", closes_at="2026-01-01T00:00:00+08:00"
            ),
            "closes_at must be after campaign.opens_at",
        ),
        (campaign_toml(timezone="Mars/Olympus"), "not a known time zone"),
        (campaign_toml(campaign_id="Bad Id"), "campaign.id must be"),
        (campaign_toml(opens_at="2026-01-01T00:00:00"), "with a UTC offset"),
        (campaign_toml(votes_per_phone_per_day=0), "votes_per_phone_per_day must be an integer"),
        (campaign_toml(trusted_proxies=["not-a-net"]), "is not a CIDR"),
        (campaign_toml(nominees=0), "at least one [[nominees]]"),
        (campaign_toml().replace("[rules]", "[rulez]"), "unknown key rulez"),
        (NO_RULES, "missing [rules] table"),
        (campaign_toml(phone_burst_limit="5"), "phone_burst_limit must be an integer"),
        (campaign_toml(trusted_proxy=["10.0.0.0/8"]), "unknown key rules.trusted_proxy"),
        (
            campaign_toml().replace('employer = "Works"', 'employer = "W"\nphoto = "x"', 1),
            "unknown key nominees[0].photo",
        ),
        (campaign_toml().replace("[rules]", 'opens = "x"\n[rules]'), "unknown key campaign.opens"),
        ("[campaign]\n[extra]\n", "unknown key extra"),
    ],
)
def test_malformed_campaigns_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(CampaignError) as caught:
        parse_campaign(text, source="campaign file x.toml")
    assert message in str(caught.value)
    assert str(caught.value).startswith("campaign file x.toml: ")
    assert "\n" not in str(caught.value)


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(CampaignError, match="cannot read it"):
        load_campaign(tmp_path / "missing.toml")
