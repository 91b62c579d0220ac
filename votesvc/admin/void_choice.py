# ruff: noqa: RUF001  (the forms speak Chinese: full-width punctuation)
"""Which votes a void names, as the console's forms say it.

Votes are chosen by their ids, by a phone or by a nominee, each within an
optional time range (in the campaign's zone); or by a finding of the
suspicious-activity page (``suspect``: its signal and the selection that names
exactly its votes, which the page's preview button carries). A phone number is hashed the
moment the form arrives (the campaign's keyed hash, as the ledger holds it)
and never kept: the preview's confirm form carries the hash and a masked
number to show (138****8000).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from votesvc.admin.html import esc, number
from votesvc.campaign import Campaign
from votesvc.ledger.store import StoreError, VoteSelection
from votesvc.ledger.suspects import TITLES_ZH
from votesvc.ledger.times import zh_time
from votesvc.ledger.void import IDS_MAX
from votesvc.phones import hash_phone, normalize_phone

__all__ = ["IDS_MAX", "Chosen", "FormError", "chosen_from_confirm", "chosen_from_form", "describe"]

_VOTE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_SEPARATORS = re.compile(r"[\s,，、;；]+")
_HASH = re.compile(r"[0-9a-f]{64}")
_PREFIX = re.compile(r"[0-9a-f]{16}")
_PREFIXES_MAX = 100
_WAYS = ("ids", "phone", "nominee", "suspect")
_INCOMPLETE = "表单内容不完整，请重新预览。"


class FormError(ValueError):
    """What is wrong with the form, in Chinese, to show above it."""


@dataclass(frozen=True, slots=True)
class Chosen:
    """A selection and how to say it, with the masked phone when there is one."""

    way: str  # ids, phone, nominee or suspect
    selection: VoteSelection
    phone_shown: str = ""
    signal: str = ""  # suspect: the signal of the finding (votesvc.ledger.suspects)


def _moment(text: str, campaign: Campaign, what: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise FormError(
            f"{what}的格式不对，请用“年-月-日 时:分”，例如 2026-12-01 20:15。"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=campaign.timezone)
    return int(moment.timestamp() * 1000)


def _mask(number: str) -> str:
    return f"{number[:3]}****{number[-4:]}"


def chosen_from_form(form: Mapping[str, str], campaign: Campaign, secret: bytes) -> Chosen:
    """The selection the void form names; raises FormError."""
    way = form.get("way", "")
    if way not in _WAYS:
        raise FormError("请选择按选票编号、按手机号还是按候选人作废。")
    if way == "suspect":
        return _suspect(form, campaign)
    since = _moment(form.get("since", ""), campaign, "开始时间")
    until = _moment(form.get("until", ""), campaign, "结束时间")
    if since is not None and until is not None and since >= until:
        raise FormError("开始时间要早于结束时间。")
    phone_shown = ""
    try:
        if way == "ids":
            ids = [item for item in _SEPARATORS.split(form.get("ids", "")) if item]
            if not ids:
                raise FormError("请填写要作废的选票编号，每行一个。")
            if len(ids) > IDS_MAX:
                raise FormError(f"一次最多填写 {number(IDS_MAX)} 个选票编号。")
            wrong = [item for item in ids if not _VOTE_ID.fullmatch(item)]
            if wrong:
                raise FormError(f"这个选票编号不对：{esc(wrong[0][:70])}。请从导出文件中复制编号。")
            selection = VoteSelection(vote_ids=tuple(ids), since=since, until=until)
        elif way == "phone":
            given = normalize_phone(form.get("phone", "").strip())
            if given is None:
                raise FormError("手机号不对：请填写 11 位手机号，例如 13800138000。")
            phone_shown = _mask(given)
            selection = VoteSelection(
                phone_hash=hash_phone(secret, given), since=since, until=until
            )
        else:
            nominee = form.get("nominee", "")
            if campaign.nominee(nominee) is None:
                raise FormError("请选择一位候选人。")
            selection = VoteSelection(nominee=nominee, since=since, until=until)
    except StoreError:
        raise FormError("请填写要作废哪些选票。") from None
    return Chosen(way, selection, phone_shown)


def chosen_from_confirm(form: Mapping[str, str], campaign: Campaign) -> Chosen:
    """The selection a preview's confirm form carries back; raises FormError."""
    way = form.get("way", "")
    if way == "suspect":
        return _suspect(form, campaign)
    since, until = _ms(form, "since_ms"), _ms(form, "until_ms")
    try:
        if way == "ids":
            ids = tuple(item for item in form.get("ids", "").split() if item)
            if len(ids) > IDS_MAX or not all(_VOTE_ID.fullmatch(item) for item in ids):
                raise FormError("表单内容不完整，请重新预览。")
            return Chosen(way, VoteSelection(vote_ids=ids, since=since, until=until))
        if way == "phone":
            phone_hash = form.get("phone_hash", "")
            shown = form.get("phone_shown", "")
            if not _HASH.fullmatch(phone_hash) or not re.fullmatch(r"1\d\d\*{4}\d{4}", shown):
                raise FormError("表单内容不完整，请重新预览。")
            selection = VoteSelection(phone_hash=phone_hash, since=since, until=until)
            return Chosen(way, selection, shown)
        if way == "nominee" and campaign.nominee(form.get("nominee", "")) is not None:
            selection = VoteSelection(nominee=form["nominee"], since=since, until=until)
            return Chosen(way, selection)
    except StoreError:
        pass
    raise FormError(_INCOMPLETE)


def _ms(form: Mapping[str, str], name: str) -> int | None:
    text = form.get(name, "")
    if not text:
        return None
    if not text.lstrip("-").isdigit():
        raise FormError(_INCOMPLETE)
    return int(text)


def _suspect(form: Mapping[str, str], campaign: Campaign) -> Chosen:
    """A finding's votes, as the suspicious-activity page's preview button names them."""
    signal = form.get("signal", "")
    ids = tuple(form.get("ids", "").split())
    prefixes = tuple(form.get("prefixes", "").split())
    nominee = form.get("nominee", "") or None
    if (
        signal not in TITLES_ZH
        or len(ids) > IDS_MAX
        or not all(_VOTE_ID.fullmatch(item) for item in ids)
        or len(prefixes) > _PREFIXES_MAX
        or not all(_PREFIX.fullmatch(item) for item in prefixes)
        or (nominee is not None and campaign.nominee(nominee) is None)
    ):
        raise FormError(_INCOMPLETE)
    try:
        selection = VoteSelection(
            vote_ids=ids,
            nominee=nominee,
            prefixes=prefixes,
            since=_ms(form, "since_ms"),
            until=_ms(form, "until_ms"),
        )
    except StoreError:
        raise FormError(_INCOMPLETE) from None
    return Chosen("suspect", selection, signal=signal)


def _nominee_name(campaign: Campaign, nominee_id: str) -> str:
    nominee = campaign.nominee(nominee_id)
    return nominee.name if nominee else nominee_id


def describe(chosen: Chosen, campaign: Campaign) -> str:
    """The selection in words (HTML)."""
    selection = chosen.selection
    tz = campaign.timezone
    if chosen.way == "suspect":
        named = []
        if selection.nominee is not None:
            named.append(
                f"候选人 {esc(_nominee_name(campaign, selection.nominee))}"
                f"（{esc(selection.nominee)}）"
            )
        if len(selection.prefixes) == 1:
            named.append(f"网段 {esc(selection.prefixes[0][:8])}")
        elif selection.prefixes:
            named.append(f"{number(len(selection.prefixes))} 个网段")
        if selection.vote_ids:
            named.append(f"{number(len(set(selection.vote_ids)))} 个选票编号")
        what = f"可疑活动“{esc(TITLES_ZH[chosen.signal])}”：{'，'.join(named)}"
    elif chosen.way == "ids":
        what = f"按选票编号：{number(len(set(selection.vote_ids)))} 个编号"
    elif chosen.way == "phone":
        what = f"按手机号：{esc(chosen.phone_shown)} 投的选票"
    else:
        nominee = campaign.nominee(selection.nominee or "")
        name = nominee.name if nominee else selection.nominee
        what = f"按候选人：{esc(name)}（{esc(selection.nominee)}）得到的选票"
    if selection.since is None and selection.until is None:
        return what + "，不限时间"
    since = "最早" if selection.since is None else zh_time(selection.since, tz)
    until = "现在" if selection.until is None else zh_time(selection.until, tz)
    return f"{what}，时间从 {esc(since)} 到 {esc(until)}（不含结束时间）"
