"""handlers/public.py without the gateway (tests/harness/desk.py): SMS keywords and unreadable
messages answered on the fast path, against a real SQLite store; no model involved."""

from __future__ import annotations

from pathlib import Path

from bot.models import Channel, Lane
from bot.route import Handler, Route
from bot.store import incidents, subscriptions
from handlers.texts import say
from tests.harness.desk import VICTIM, Desk, desk

ROOF = "Water rising fast, 4 of us on the roof of Char Bhadrasan school"


async def answer(d: Desk, text: str, **facts: object) -> list[str]:
    """The fast path's answer: the handler intake's stored decision names."""
    item = await d.receive(text, **facts)
    row = await d.row(item)
    assert row.decision is not None and row.decision.route is Route.FAST
    handlers = {Handler.KEYWORD: d.public.keyword, Handler.UNREADABLE: d.public.unreadable}
    outs = await handlers[row.decision.handler](row, row.decision)
    assert all(o.idem_key == f"reply:{item.inbox_id}" and o.lane is Lane.URGENT for o in outs)
    return [o.text for o in outs]


async def test_join_subscribes_and_stop_ends_the_alerts(tmp_path: Path) -> None:
    async with desk(tmp_path) as d:
        assert await answer(d, "JOIN ward-5") == [say("joined", "en", area="ward-5")]
        assert [s.peer for s in await subscriptions.subscribers(d.db, "ward-5")] == [VICTIM]
        assert await answer(d, "STOP") == [say("stopped", "en")]
        assert await subscriptions.subscribers(d.db, "ward-5") == []
        assert await answer(d, "JOIN") == [say("help", "en")]  # no area: how to use it


async def test_status_without_a_case_and_with_one(tmp_path: Path) -> None:
    async with desk(tmp_path) as d:
        assert await answer(d, "STATUS") == [say("no_case", "en")]
        await d.receive(ROOF)  # opens a case (intake)
        [text] = await answer(d, "STATUS")
        [case] = await incidents.list_incidents(d.db)
        assert text == say("status_received", "en", case=case.case)


async def test_a_latin_keyword_is_answered_in_the_language_of_the_senders_case(
    tmp_path: Path,
) -> None:
    async with desk(tmp_path) as d:
        await d.receive("পানি বাড়ছে, আমরা ৪ জন স্কুলের ছাদে আটকে আছি")
        [text] = await answer(d, "STATUS")
        [case] = await incidents.list_incidents(d.db)
        assert case.lang == "bn"
        assert text == say("status_received", "bn", case=case.case)


async def test_unreadable_messages_get_a_plain_request(tmp_path: Path) -> None:
    async with desk(tmp_path) as d:
        assert await answer(d, "", binary=True) == [say("binary_sms", "en")]
        assert await answer(d, "", empty=True) == [say("empty_sms", "en")]


async def test_a_message_without_a_keyword_gets_nothing_on_the_fast_path(tmp_path: Path) -> None:
    async with desk(tmp_path) as d:
        item = await d.receive("hello there")
        row = await d.row(item)
        assert row.channel is Channel.SMS
        assert row.decision is not None and row.decision.route is Route.MODEL
        assert row.decision.handler is Handler.VICTIM
