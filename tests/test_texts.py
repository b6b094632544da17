"""What victims are told: the first reply never promises rescue for a question, a coordinator's
closing note ends its sentence, every template fits the SMS budget. The end-to-end check runs a
real gateway with the libGammu dummy modem."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot import sms_text
from bot.models import Channel, Incident, Priority
from bot.triage import triage
from handlers.context import Services
from handlers.dispatch import victim_text
from handlers.texts import TEXTS, ack_key, finish_note, say
from tests.harness.gateway import make_settings, running_gateway
from tests.harness.ollama_standin import OllamaStandIn, text_reply

VICTIM = "+8801712345678"
PROMISES = ("Help is being arranged", "সাহায্যের ব্যবস্থা", "मदद की व्यवस्था", "مدد کا انتظام")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Is the tube well water safe to drink?", "ack_info"),
        ("how do we make water safe to drink", "ack_info"),
        ("need drinking water for 20 families", "ack_info"),
        ("where is the nearest shelter?", "ack_info"),
        ("পানি কি খাওয়া যাবে?", "ack_info"),
        ("help", "ack_ask"),
        ("we are trapped on the roof, water rising", "ack"),
        ("my leg is injured, cant walk", "ack"),
        ("🆘🌊🏠😭🙏", "ack"),
    ],
)
def test_first_reply_promises_help_only_for_high_and_critical(text: str, expected: str) -> None:
    verdict = triage(text)
    bare = set(verdict.reasons) == {"plea"} and len(text.split()) <= 3
    assert ack_key(verdict.priority, bare_plea=bare) == expected
    if expected == "ack_info":
        for lang in ("en", "bn", "hi", "ur"):
            assert not any(p in say("ack_info", lang, case="LF-1") for p in PROMISES)


def test_ack_key_by_priority() -> None:
    assert ack_key(Priority.CRITICAL, bare_plea=False) == "ack"
    assert ack_key(Priority.HIGH, bare_plea=False) == "ack"
    assert ack_key(Priority.MEDIUM, bare_plea=False) == "ack_info"
    assert ack_key(Priority.LOW, bare_plea=False) == "ack_info"
    assert ack_key(Priority.HIGH, bare_plea=True) == "ack_ask"


def test_every_template_fits_the_budget_in_every_language() -> None:
    values = {"case": "LF-1234567", "team": "boat-12", "note": "", "area": "char bhadrasan"}
    for key, table in TEXTS.items():
        for lang in table:
            assert sms_text.segments(say(key, lang, **values)) <= 3, (key, lang)


@pytest.mark.parametrize(
    ("lang", "note", "expected"),
    [
        ("en", "everyone safe at the shelter", "everyone safe at the shelter."),
        ("en", "everyone safe at the shelter!", "everyone safe at the shelter!"),
        ("en", "  all safe (4 people)  ", "all safe (4 people)."),
        ("bn", "সবাই আশ্রয়কেন্দ্রে নিরাপদ", "সবাই আশ্রয়কেন্দ্রে নিরাপদ।"),
        ("hi", "सब सुरक्षित", "सब सुरक्षित।"),
        ("ur", "سب محفوظ", "سب محفوظ۔"),
        ("en", "", ""),
    ],
)
def test_closing_note_ends_its_sentence(lang: str, note: str, expected: str) -> None:
    assert finish_note("resolved", lang, note) == expected


def test_note_at_the_end_of_a_template_is_left_alone() -> None:
    assert finish_note("relay", "en", "boat in 10 min") == "boat in 10 min"
    assert finish_note("dispatch_rejected", "en", "no boat free") == "no boat free"


@pytest.mark.parametrize("channel", [Channel.SMS, Channel.MATRIX])
def test_resolve_message_reads_as_two_sentences(tmp_path: Path, channel: Channel) -> None:
    services = Services(db=None, settings=make_settings(tmp_path, "http://x"), clock=lambda: 0.0)  # type: ignore[arg-type]
    incident = Incident(
        1, "LF-1234", Priority.HIGH, "open", "", 4, "", "", VICTIM, channel, VICTIM, "en", 0, 0
    )
    text, cut = victim_text(services, incident, "resolved", note="everyone safe at the shelter")
    assert not cut
    assert "your case is closed. everyone safe at the shelter. Text again if you need help." in text


async def test_drinking_water_question_is_not_told_help_is_arranged(
    tmp_path: Path, ollama_standin: OllamaStandIn
) -> None:
    ollama_standin.push_chat(text_reply("Boil water for 1 minute before drinking."))
    async with running_gateway(make_settings(tmp_path, ollama_standin.url)) as gw:
        gw.sms_in(VICTIM, "Is the tube well water safe to drink?")
        sent = await gw.wait_sent(VICTIM, 2)
    ack = sent[0]["text"]
    assert "Case LF-" in ack and "We will text you a reply" in ack
    assert "Help is being arranged" not in ack
    assert "Boil water" in sent[1]["text"]
