"""The verified-voter parts of the benchmark (loadtest/bench): its campaign, its
tokens and its SMS gateway, checked against the service's own parts."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import cast

import pytest
import redis

from loadtest.bench.campaign import (
    CAMPAIGN_ID,
    OUT_OF_REACH,
    SECRET,
    VERIFIED_CAMPAIGN_ID,
    bench_campaign,
)
from loadtest.bench.otp import GATEWAY_SECRET, Gateway
from loadtest.bench.processes import Pinning
from loadtest.bench.verified import VerifiedBench
from loadtest.bench.wrk import Phones
from tests.localhost import free_port
from votesvc.days import system_clock
from votesvc.keys import Keys
from votesvc.phones import hash_phone
from votesvc.settings import Settings
from votesvc.sms import SmsFailed, WebhookSender
from votesvc.verification import build_verification


def test_the_verified_campaign_is_the_bench_campaign_with_sms_and_no_limits_in_reach() -> None:
    plain, verified = bench_campaign(), bench_campaign(verified=True)
    assert (plain.id, verified.id) == (CAMPAIGN_ID, VERIFIED_CAMPAIGN_ID)
    assert not plain.verification.required
    assert plain.rules.phone_burst_limit < plain.rules.votes_per_phone_per_day
    rules = verified.verification
    assert rules.methods == ("sms",)
    assert rules.pow_max_number == 0
    assert rules.sends_per_ip_per_hour == rules.sms_budget_per_minute == OUT_OF_REACH
    assert rules.verifies_per_ip_per_hour == rules.sends_per_prefix_per_hour == OUT_OF_REACH
    # Each token casts its day's votes back to back: the burst limit must let it.
    assert verified.rules.phone_burst_limit == verified.rules.votes_per_phone_per_day
    assert verified.nominees == plain.nominees


def test_bench_tokens_are_votes_the_service_accepts(tmp_path: Path) -> None:
    opts = argparse.Namespace(port=free_port(), seconds=1, repeats=1, otp_clients=1)
    first = int(Phones().take())  # the first number a bench's Phones hands out
    # No server or flusher is started: only the tokens are used.
    bench = VerifiedBench(opts, {}, Pinning.plan(), Phones(), cast(redis.Redis, None), tmp_path)
    lines = bench.token_file(3).read_text().splitlines()
    campaign = bench_campaign(verified=True)
    settings = Settings(secret=SECRET.encode(), sms_sender="log")
    keys = Keys(campaign.id, 1)
    tokens = build_verification(campaign, settings, None, keys, system_clock).tokens
    assert tokens is not None
    voters = [tokens.voter(line) for line in lines]
    expected = [hash_phone(SECRET.encode(), str(first + n)) for n in range(3)]
    assert [voter.phone_hash for voter in voters] == expected
    assert {voter.method for voter in voters} == {"sms"}


async def test_the_gateway_keeps_codes_the_webhook_signed_and_refuses_the_rest() -> None:
    port = free_port()
    gateway = Gateway(GATEWAY_SECRET.encode())
    await gateway.start(port)
    url = f"http://127.0.0.1:{port}/sms"
    signed = WebhookSender(url, GATEWAY_SECRET.encode())
    forged = WebhookSender(url, b"not-the-gateway-secret")
    try:
        await signed.send(VERIFIED_CAMPAIGN_ID, "13800138000", "123456", 300)
        await signed.send(VERIFIED_CAMPAIGN_ID, "13900139000", "654321", 300)
        with pytest.raises(SmsFailed):
            await forged.send(VERIFIED_CAMPAIGN_ID, "13700137000", "111111", 300)
    finally:
        await signed.aclose()
        await forged.aclose()
        await gateway.aclose()
    assert gateway.codes == {"13800138000": "123456", "13900139000": "654321"}
    assert gateway.refused == 1
