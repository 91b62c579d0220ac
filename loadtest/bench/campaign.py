"""The benchmark's own campaign: limits that its load never reaches by accident.

All load comes from 127.0.0.1, so the IP limit is out of reach; every wrk vote
is a new phone, so the burst and daily limits only matter to the memory fill,
which casts each phone's votes as fast as the burst limit lets it.
"""

from __future__ import annotations

from votesvc.campaign import Campaign, parse_campaign

SECRET = "bench-secret-not-for-production-use"  # >= 32 characters, as votesvc demands
CAMPAIGN_ID = "bench"
NOMINEES = 30


def campaign_toml() -> str:
    lines = [
        "[campaign]",
        f'id = "{CAMPAIGN_ID}"',
        'title = "Benchmark campaign"',
        'timezone = "Asia/Shanghai"',
        'opens_at = "2020-01-01T00:00:00+08:00"',
        'closes_at = "2099-12-31T23:59:59+08:00"',
        "",
        "[rules]",
        "votes_per_phone_per_day = 10",
        "votes_per_nominee_per_phone_per_day = 1",
        "phone_burst_limit = 5",
        "phone_burst_seconds = 10",
        "ip_limit = 1000000000  # all load comes from 127.0.0.1",
        "ip_limit_seconds = 60",
        "trusted_proxies = []",
    ]
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


def bench_campaign() -> Campaign:
    """The campaign ``votesvc serve`` runs in the benchmark, as the service parses it."""
    return parse_campaign(campaign_toml(), source="bench campaign")
