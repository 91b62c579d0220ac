"""The benchmark's own campaigns: limits that its load never reaches by accident.

All load comes from 127.0.0.1, so the IP limit is out of reach; every wrk vote
is a new phone, so the burst and daily limits only matter to the memory fill,
which casts each phone's votes as fast as the burst limit lets it.

The verified campaign is the same campaign under another id (its own keys in
the same Redis) with ``[verification] methods = ["sms"]``, no proof of work
and every verification limit out of reach: each voter token casts its day's
votes back to back, so the phone burst limit is raised to the daily limit, and
each code is sent to a new phone, so only the cooldown and the code's life stay
as the service's defaults.
"""

from __future__ import annotations

from votesvc.campaign import Campaign, parse_campaign

SECRET = "bench-secret-not-for-production-use"  # >= 32 characters, as votesvc demands
CAMPAIGN_ID = "bench"
VERIFIED_CAMPAIGN_ID = "bench-verified"
NOMINEES = 30
VOTES_PER_PHONE = 10
OUT_OF_REACH = 1_000_000_000
_VERIFICATION_LIMITS = (
    "sends_per_phone_per_day",
    "sends_per_ip_per_hour",
    "sends_per_prefix_per_hour",
    "verifies_per_ip_per_hour",
    "sms_budget_per_minute",
)


def campaign_toml(*, verified: bool = False) -> str:
    lines = [
        "[campaign]",
        f'id = "{VERIFIED_CAMPAIGN_ID if verified else CAMPAIGN_ID}"',
        'title = "Benchmark campaign"',
        'timezone = "Asia/Shanghai"',
        'opens_at = "2020-01-01T00:00:00+08:00"',
        'closes_at = "2099-12-31T23:59:59+08:00"',
        "",
        "[rules]",
        f"votes_per_phone_per_day = {VOTES_PER_PHONE}",
        "votes_per_nominee_per_phone_per_day = 1",
        f"phone_burst_limit = {VOTES_PER_PHONE if verified else 5}",
        "phone_burst_seconds = 10",
        "ip_limit = 1000000000  # all load comes from 127.0.0.1",
        "ip_limit_seconds = 60",
        "trusted_proxies = []",
    ]
    if verified:
        lines += ["", "[verification]", 'methods = ["sms"]', "pow_max_number = 0"]
        lines += [f"{limit} = {OUT_OF_REACH}" for limit in _VERIFICATION_LIMITS]
    for index in range(1, NOMINEES + 1):
        lines += [
            "",
            "[[nominees]]",
            f'id = "N{index:02d}"',
            f'name = "Nominee {index}"',
            'trade = "welder"',
            'employer = "Works"',
        ]
    return "\n".join(lines) + "\n"


def bench_campaign(*, verified: bool = False) -> Campaign:
    """A campaign ``votesvc serve`` runs in the benchmark, as the service parses it."""
    name = "bench verified campaign" if verified else "bench campaign"
    return parse_campaign(campaign_toml(verified=verified), source=name)
