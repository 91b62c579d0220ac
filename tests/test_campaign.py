from __future__ import annotations

import re
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
            campaign_toml().replace('employer = "Works"', 'employer = "W"\nportrait = "x"', 1),
            "unknown key nominees[0].portrait",
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


def test_no_verification_table_means_unverified() -> None:
    campaign = parse_campaign(campaign_toml())
    assert campaign.verification.methods == ()
    assert not campaign.verification.required
    assert "verification" not in campaign.as_json()


def test_the_sms_demo_campaign_verifies_by_sms() -> None:
    path = Path(__file__).parent.parent / "votesvc" / "campaigns" / "demo-sms.toml"
    campaign = load_campaign(path)
    assert campaign.verification.methods == ("sms",)
    assert campaign.verification.pow_max_number == 100_000
    assert campaign.as_json()["verification"]["pow"] is True


def test_verification_values_are_read() -> None:
    table = {
        "methods": ["sms", "partner"],
        "partners": ["app12351", "wechat"],
        "resend_seconds": 2,
        "pow_max_number": 0,
        "wrong_codes_max": 1,
    }
    verification = parse_campaign(campaign_toml(verification=table)).verification
    assert verification.methods == ("sms", "partner")
    assert verification.partners == ("app12351", "wechat")
    assert verification.resend_seconds == 2
    assert verification.pow_max_number == 0
    assert verification.code_ttl_seconds == 300  # a default
    assert verification.sms_budget_per_minute == 600


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"methods": ["email"]}, "verification.methods: 'email' is not one of sms, partner"),
        ({"methods": ["sms", "sms"]}, "verification.methods lists a name twice"),
        ({"methods": "sms"}, "verification.methods must be a list"),
        ({"methods": ["partner"]}, "list the partner ids in partners"),
        ({"methods": ["partner"], "partners": ["a:b"]}, "verification.partners: 'a:b' is not"),
        ({"methods": ["sms"], "resend_seconds": 0}, "verification.resend_seconds must be an"),
        ({"methods": ["sms"], "code_ttl_seconds": -5}, "verification.code_ttl_seconds must be"),
        ({"methods": ["sms"], "pow_max_number": -1}, "verification.pow_max_number must be an"),
        ({"methods": ["sms"], "wrong_codes_max": 1.5}, "verification.wrong_codes_max must be"),
        ({"methods": ["sms"], "send_per_day": 3}, "unknown key verification.send_per_day"),
    ],
)
def test_bad_verification_tables_name_the_problem(table: dict[str, object], message: str) -> None:
    with pytest.raises(CampaignError, match=re.escape(message)):
        parse_campaign(campaign_toml(verification=table))


def test_award_seats_is_a_rule_with_a_default() -> None:
    assert parse_campaign(campaign_toml()).rules.award_seats == 10
    campaign = parse_campaign(campaign_toml(award_seats=5))
    assert campaign.rules.award_seats == 5
    assert campaign.as_json()["rules"]["award_seats"] == 5
    with pytest.raises(CampaignError, match=re.escape("rules.award_seats must be an integer >= 1")):
        parse_campaign(campaign_toml(award_seats=0))
