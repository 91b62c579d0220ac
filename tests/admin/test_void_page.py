"""Voiding from the console: the preview, the confirm, and a selection that changed (409)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from tests.admin.support import code_of, console_service, organiser
from tests.support import Service, make_campaign, phone
from votesvc.ledger.store import AuditEntry, LedgerVote, Store, build_store
from votesvc.redis_server import EmbeddedRedis


class Ledger:
    """The service's ledger, read and changed behind the console's back."""

    def __init__(self, store: Store, campaign: str) -> None:
        self.store = store
        self.campaign = campaign

    async def rows(self) -> dict[str, LedgerVote]:
        return {v.vote_id: v async for chunk in self.store.votes(self.campaign) for v in chunk}

    async def audit(self) -> list[AuditEntry]:
        return await self.store.audit_log(self.campaign)


async def open_ledger(service: Service) -> Ledger:
    store = build_store(service.settings)
    await store.open()
    return Ledger(store, service.campaign.id)


async def cast(service: Service, *votes: tuple[str, str]) -> list[str]:
    ids = []
    for nominee, number in votes:
        response = await service.vote(nominee, number)
        assert response.status_code == 201, response.text
        ids.append(response.json()["vote_id"])
    return ids


def hidden_fields(page: str) -> dict[str, str]:
    """The confirm form's fields, as the browser would send them back."""
    form = page[page.index('id="confirm"') :]
    form = form[: form.index("</form>")]
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))
    return {
        name: value.replace("&quot;", '"').replace("&amp;", "&") for name, value in fields.items()
    }


def shown(page: str) -> dict[str, int]:
    """The preview's votes per nominee."""
    return {nid: int(n) for nid, n in re.findall(r'<tr data-id="(\w+)" data-count="(\d+)">', page)}


def count_of(page: str) -> int:
    found = re.search(r'id="count" data-count="(\d+)"', page)
    assert found is not None
    return int(found[1])


async def live(service: Service) -> dict[str, int]:
    tally = await service.fresh_tally()
    return {n["id"]: n["votes"] for n in tally["nominees"] if n["votes"]}


async def test_the_preview_matches_what_confirm_then_does(
    redis: aioredis.Redis, redis_server: EmbeddedRedis, tmp_path: Path, database_url: str | None
) -> None:
    campaign = make_campaign(votes_per_phone_per_day=5)
    async with (
        console_service(redis_server.url, tmp_path, database_url, campaign=campaign) as service,
        organiser(service) as ann,
    ):
        ledger = await open_ledger(service)
        try:
            suspect = await cast(service, ("N01", phone(1)), ("N02", phone(1)), ("N03", phone(1)))
            await cast(service, ("N01", phone(2)), ("N02", phone(3)), ("N02", phone(4)))
            assert (await ann.sign_in()).status_code == 303
            form = await ann.client.get("/admin/void")
            assert form.status_code == 200
            preview = await ann.post(
                "/admin/void/preview", {"way": "phone", "phone": "+86 139-0000-0001"}
            )
            assert preview.status_code == 200, preview.text
            page = preview.text
            assert count_of(page) == 3
            assert shown(page) == {"N01": 1, "N02": 1, "N03": 1}
            assert set(re.findall(r'class="mono">(\w+)<', page)) == set(suspect)
            assert "139****0001" in page
            assert phone(1) not in page  # the number is not echoed, only its mask
            assert code_of(page) is None
            assert "还没有作废" in page
            # Nothing changed yet: the preview is only a look.
            assert not any(v.void for v in (await ledger.rows()).values())

            confirm = {**hidden_fields(page), "reason": "同一号码刷票"}
            done = await ann.client.post("/admin/void/confirm", data=confirm)
            assert done.status_code == 200, done.text
            assert code_of(done.text) is None
            assert 'id="voided" data-count="3"' in done.text
            rows = await ledger.rows()
            assert {vid for vid, v in rows.items() if v.void} == set(suspect)
            assert {v.void_reason for v in rows.values() if v.void} == {"同一号码刷票"}
            assert await live(service) == {"N01": 1, "N02": 2}
            audit = await ledger.audit()
            assert [(e.actor, e.action, e.reason) for e in audit if e.action == "void"] == [
                ("ann", "void", "同一号码刷票")
            ]
            detail: dict[str, Any] = json.loads(audit[-1].detail)
            assert set(detail["voided"]) == set(suspect)
            assert (detail["count"], detail["by_nominee"]) == (3, {"N01": 1, "N02": 1, "N03": 1})
            assert detail["via"] == "console"
            assert len(detail["phone_hash"]) == 64

            # The same confirm again: those votes are void now, the selection names none.
            again = await ann.client.post("/admin/void/confirm", data=confirm)
            assert (again.status_code, code_of(again.text)) == (409, "selection_changed")
            assert count_of(again.text) == 0
            assert len([e for e in await ledger.audit() if e.action == "void"]) == 1
        finally:
            await ledger.store.close()


async def test_a_vote_voided_meanwhile_turns_the_confirm_into_409(
    redis: aioredis.Redis, redis_server: EmbeddedRedis, tmp_path: Path, database_url: str | None
) -> None:
    accounts = {"ann": "operator", "bob": "operator"}
    async with (
        console_service(redis_server.url, tmp_path, database_url, accounts=accounts) as service,
        organiser(service) as ann,
        organiser(service) as bob,
    ):
        ledger = await open_ledger(service)
        try:
            ids = await cast(service, *(("N07", phone(n)) for n in range(4)))
            await cast(service, ("N08", phone(9)))
            assert (await ann.sign_in()).status_code == 303
            assert (await bob.sign_in("bob")).status_code == 303
            preview = await ann.post("/admin/void/preview", {"way": "nominee", "nominee": "N07"})
            assert shown(preview.text) == {"N07": 4}
            first = {**hidden_fields(preview.text), "reason": "刷票"}

            # Meanwhile a colleague voids one of those votes by its id.
            other = await bob.post("/admin/void/preview", {"way": "ids", "ids": ids[0]})
            assert count_of(other.text) == 1
            other_confirm = {**hidden_fields(other.text), "reason": "重复"}
            assert (
                await bob.client.post("/admin/void/confirm", data=other_confirm)
            ).status_code == 200

            changed = await ann.client.post("/admin/void/confirm", data=first)
            assert (changed.status_code, code_of(changed.text)) == (409, "selection_changed")
            assert "这次没有作废任何选票" in changed.text
            assert count_of(changed.text) == 3  # a fresh preview
            assert shown(changed.text) == {"N07": 3}
            rows = await ledger.rows()
            assert [vid for vid, v in rows.items() if v.void] == [ids[0]]  # nothing more

            # A vote that came in after the preview changes the selection too.
            fresh = {**hidden_fields(changed.text), "reason": "刷票"}
            await cast(service, ("N07", phone(5)))
            late = await ann.client.post("/admin/void/confirm", data=fresh)
            assert (late.status_code, count_of(late.text)) == (409, 4)

            final = {**hidden_fields(late.text), "reason": "刷票"}
            done = await ann.client.post("/admin/void/confirm", data=final)
            assert 'id="voided" data-count="4"' in done.text
            assert await live(service) == {"N08": 1}
            voids = [e for e in await ledger.audit() if e.action == "void"]
            assert [(e.actor, json.loads(e.detail)["count"]) for e in voids] == [
                ("bob", 1),
                ("ann", 4),
            ]
        finally:
            await ledger.store.close()


async def test_the_preview_says_when_the_award_would_change(
    redis: aioredis.Redis, redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    campaign = make_campaign(award_seats=2, nominees=4)
    async with (
        console_service(redis_server.url, tmp_path, campaign=campaign) as service,
        organiser(service) as ann,
    ):
        plan = ["N01"] * 3 + ["N02"] * 2 + ["N03"] * 2 + ["N04"]
        ids = await cast(service, *((nominee, phone(n)) for n, nominee in enumerate(plan)))
        assert (await ann.sign_in()).status_code == 303
        quiet = await ann.post("/admin/void/preview", {"way": "ids", "ids": ids[7]})
        assert code_of(quiet.text) is None
        assert 'data-code="award_unchanged"' in quiet.text
        # N02 loses one: N03 takes its place; before, N02 and N03 tied across the line.
        loud = await ann.post("/admin/void/preview", {"way": "ids", "ids": f"{ids[3]}\n"})
        assert 'data-code="award_changes"' in loud.text
        assert "获奖名单会改变" in loud.text
        assert "获奖线上的并列情况会改变" in loud.text


async def test_a_form_that_names_nothing_or_nonsense_says_what_to_fix(
    redis: aioredis.Redis, redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    async with console_service(redis_server.url, tmp_path) as service, organiser(service) as ann:
        assert (await ann.sign_in()).status_code == 303
        for form, says in (
            ({"way": "ids", "ids": "  "}, "请填写要作废的选票编号"),
            ({"way": "ids", "ids": "not/an/id"}, "这个选票编号不对"),
            ({"way": "phone", "phone": "12345"}, "手机号不对"),
            ({"way": "nominee", "nominee": "N99"}, "请选择一位候选人"),
            ({"way": "nominee", "nominee": "N01", "since": "tomorrow"}, "开始时间的格式不对"),
            (
                {
                    "way": "nominee",
                    "nominee": "N01",
                    "since": "2026-06-02T00:00",
                    "until": "2026-06-01T00:00",
                },
                "开始时间要早于结束时间",
            ),
            ({"way": "all"}, "请选择按选票编号"),
        ):
            page = await ann.post("/admin/void/preview", form)
            assert (page.status_code, code_of(page.text)) == (400, "invalid_form"), form
            assert says in page.text, form
        empty = await ann.post("/admin/void/preview", {"way": "nominee", "nominee": "N01"})
        assert 'data-code="nothing"' in empty.text
        assert 'id="confirm"' not in empty.text
        ids = await cast(service, ("N01", phone(1)))
        preview = await ann.post("/admin/void/preview", {"way": "ids", "ids": ids[0]})
        no_reason = await ann.client.post(
            "/admin/void/confirm", data={**hidden_fields(preview.text), "reason": "  "}
        )
        assert (no_reason.status_code, code_of(no_reason.text)) == (400, "invalid_form")
        assert "请填写作废原因" in no_reason.text
        tampered = {**hidden_fields(preview.text), "way": "phone", "reason": "x"}
        refused = await ann.client.post("/admin/void/confirm", data=tampered)
        assert refused.status_code == 400


async def test_a_time_range_narrows_the_selection(
    redis: aioredis.Redis, redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    async with console_service(redis_server.url, tmp_path) as service, organiser(service) as ann:
        await cast(service, ("N01", phone(1)), ("N01", phone(2)))
        assert (await ann.sign_in()).status_code == 303
        for since, until, expected in (
            ("", "", 2),
            ("2026-01-01T00:00", "2099-01-01T00:00:00", 2),
            ("2099-01-01T00:00", "", 0),
            ("", "2026-01-01T00:00", 0),
        ):
            page = await ann.post(
                "/admin/void/preview",
                {"way": "nominee", "nominee": "N01", "since": since, "until": until},
            )
            assert count_of(page.text) == expected, (since, until)
            assert ("时间从" in page.text) == bool(since or until)
