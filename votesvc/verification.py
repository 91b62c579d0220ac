"""A campaign's voter verification, assembled from its ``[verification]`` table.

:func:`check_verification` is what ``serve`` runs before it starts: a campaign
asking for ``"sms"`` with no sender, or naming a partner without a key, stops
start-up with one line; :func:`warn_if_unverified` gives an unverified
campaign its one warning once ``serve`` has started.
:func:`build_verification` makes the parts a serving process uses: the token
checker for votes and, with ``"sms"``, the code sender and the proof of work.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from votesvc.campaign import Campaign
from votesvc.days import Clock
from votesvc.errors import ConfigError
from votesvc.keys import Keys
from votesvc.otp import OneTimeCodes
from votesvc.pow import ProofOfWork
from votesvc.settings import ENV_PREFIX, Settings
from votesvc.sms import SmsSender, build_sender
from votesvc.tokens import VoterTokens

__all__ = ["Verifiers", "build_verification", "check_verification", "warn_if_unverified"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Verifiers:
    """What one serving process verifies voters with (None: not in this campaign)."""

    tokens: VoterTokens | None
    codes: OneTimeCodes | None
    pow_gate: ProofOfWork | None
    sender: SmsSender | None


def check_verification(campaign: Campaign, settings: Settings) -> None:
    """Raise ConfigError when the settings cannot serve the campaign's methods."""
    verification = campaign.verification
    if verification.sms:
        build_sender(settings.sms_sender, settings.sms_webhook_secret or None)  # ConfigError
        if settings.sms_sender is None:
            raise ConfigError(
                f'campaign {campaign.id} verifies by "sms" but {ENV_PREFIX}SMS_SENDER is not set '
                "(log, or webhook:<URL>)"
            )
    if verification.partner:
        keys = dict(settings.partner_keys)
        missing = [partner for partner in verification.partners if partner not in keys]
        if missing:
            raise ConfigError(
                f"campaign {campaign.id} lists partner {missing[0]!r} but "
                f"{ENV_PREFIX}PARTNER_KEYS has no key for it"
            )


def warn_if_unverified(campaign: Campaign) -> None:
    """``serve``'s one warning, once it starts, for a campaign that verifies nobody."""
    if not campaign.verification.required:
        log.warning(
            "campaign %s has no [verification]: votes are NOT verified, anyone can vote "
            "with any phone number (README, Verified voters)",
            campaign.id,
        )


def build_verification(
    campaign: Campaign, settings: Settings, client: Any, keys: Keys, clock: Clock
) -> Verifiers:
    """The verification parts for a serving process (ConfigError as :func:`check_verification`)."""
    verification = campaign.verification
    if not verification.required:
        return Verifiers(None, None, None, None)
    partner_keys = dict(settings.partner_keys)
    tokens = VoterTokens(
        campaign.id,
        settings.secret,
        ttl_seconds=verification.token_ttl_seconds,
        closes_at=campaign.closes_at.timestamp(),
        partners={p: partner_keys[p] for p in verification.partners if p in partner_keys}
        if verification.partner
        else {},
        clock=clock,
    )
    if not verification.sms:
        return Verifiers(tokens, None, None, None)
    sender = build_sender(settings.sms_sender, settings.sms_webhook_secret or None)
    if sender is None:
        raise ConfigError(f'campaign {campaign.id} verifies by "sms": set {ENV_PREFIX}SMS_SENDER')
    codes = OneTimeCodes(client, campaign, keys, settings.secret, sender, clock)
    pow_gate = (
        ProofOfWork(settings.secret, verification.pow_max_number, clock=clock)
        if verification.pow_max_number
        else None
    )
    return Verifiers(tokens, codes, pow_gate, sender)
