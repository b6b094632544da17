"""Property tests (hypothesis, bounded) and two run-wide guarantees: personal data stays out of
logs, and the whole SMS flow is offline (invariant 8)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gammu
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot import redact
from bot.models import Channel, Inbound, Priority, Role
from bot.sim import inject_sms
from bot.sms_text import fit, segments
from bot.store.db import Database
from bot.store.inbox import InboxRow
from bot.tools import ToolOutcome, ToolRegistry
from bot.transports.sms import Modem, count_parts
from config.settings import ConfigError, ModemSettings, Settings, load_settings
from handlers.context import Services, TurnContext
from handlers.dispatch import RESPONDER_TOOLS, VICTIM_TOOLS
from tests.harness.gateway import make_settings, running_gateway
from tests.harness.netguard import block_outbound
from tests.harness.ollama_standin import OllamaStandIn, text_reply, tool_reply
from tests.harness.process import to_toml

BOUNDED = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# Characters a handset can send: GSM-7 (with the extension table), Bengali, Devanagari, Arabic
# script and a few emoji; no control characters (those are not typed on a phone).
PHONE_TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from(list("abcXYZ 019.,!?@£$èé{}[]~^|€\\\n\"'")),
        st.characters(min_codepoint=0x0980, max_codepoint=0x09FF),
        st.characters(min_codepoint=0x0900, max_codepoint=0x097F),
        st.characters(min_codepoint=0x0600, max_codepoint=0x06FF),
        st.sampled_from(["😀", "🚤", "🆘"]),
    ),
    min_size=1,
    max_size=400,
).filter(lambda t: t.strip() != "")


# ---- SMS round trip through the real dummy modem -----------------------------------------------


class _Phone:
    """One dummy modem reused across examples (Init costs time); fresh SIM contents each time."""

    def __init__(self, device: Path) -> None:
        self.device = device
        self.loop = asyncio.new_event_loop()
        self.got: list[Inbound] = []

        async def on_receive(batch: list[Inbound]) -> None:
            self.got.extend(batch)

        self.modem = Modem(ModemSettings(name="prop", device=str(device)), on_receive)

    def receive(self, number: str, text: str) -> list[Inbound]:
        self.got = []
        inject_sms(self.device, number, text)
        self.loop.run_until_complete(self.modem.poll_once())
        return self.got

    def close(self) -> None:
        self.loop.run_until_complete(self.modem.close())
        self.loop.close()


@pytest.fixture(scope="module")
def phone() -> Iterator[_Phone]:
    with tempfile.TemporaryDirectory() as tmp:
        p = _Phone(Path(tmp) / "modem")
        yield p
        p.close()


@BOUNDED
@given(text=PHONE_TEXT, number=st.from_regex(r"\+8801[3-9][0-9]{8}", fullmatch=True))
def test_sms_text_survives_the_real_modem(phone: _Phone, text: str, number: str) -> None:
    if count_parts(text) > 50:
        return
    got = phone.receive(number, text)
    assert len(got) == 1
    msg = got[0]
    assert msg.peer == number
    assert msg.text == text
    assert msg.meta["parts"] == count_parts(text)
    assert not list((phone.device / "sms" / "1").glob("[0-9]*"))  # deleted after delivery


# ---- segment budget ------------------------------------------------------------------------


@BOUNDED
@given(
    text=st.text(min_size=0, max_size=1500),
    budget=st.integers(min_value=1, max_value=6),
    suffix=st.sampled_from(["", " [LF-4821]", " [LF-12345678]"]),
)
def test_fit_respects_the_budget_as_libgammu_counts_it(text: str, budget: int, suffix: str) -> None:
    out = fit(text, budget, suffix=suffix)
    assert segments(out) <= budget
    if out:
        assert count_parts(out) <= budget  # the operator's count, not only ours
    if suffix and segments(suffix) <= budget:
        assert out.endswith(suffix)


# ---- config loading --------------------------------------------------------------------------

SECTIONS = ["storage", "model", "sms", "dispatch", "matrix", "queue", "protocols", "media", "x"]
KEYS = ["path", "host", "timeout_s", "enabled", "order", "approval", "modems", "level", "bogus"]
SCALARS = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.text(max_size=20),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(SCALARS, max_size=3),
        st.dictionaries(st.sampled_from(KEYS), inner, max_size=3),
    ),
    max_leaves=8,
)
TABLES = st.dictionaries(
    st.sampled_from(SECTIONS),
    st.one_of(st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=4), SCALARS),
    max_size=4,
)


@BOUNDED
@given(data=TABLES)
def test_any_toml_gives_settings_or_config_error(data: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.toml"
        try:
            path.write_text(to_toml(data), encoding="utf-8")
        except TypeError:
            return
        try:
            s = load_settings(path, environ={})
        except ConfigError as exc:
            assert str(exc)
        else:
            assert isinstance(s, Settings)


@BOUNDED
@given(raw=st.text(max_size=200))
def test_any_text_file_gives_settings_or_config_error(raw: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.toml"
        path.write_text(raw, encoding="utf-8", errors="surrogatepass")
        with contextlib.suppress(ConfigError):
            load_settings(path, environ={})


def test_non_utf8_config_gives_config_error(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_bytes('[model]\nname = "gemma4:e4b"  # café\n'.encode("latin-1"))
    with pytest.raises(ConfigError):
        load_settings(path, environ={})


# ---- tool arguments ----------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3)
    ),
    max_leaves=10,
)
TOOL_NAMES = [*sorted({t.name for t in [*VICTIM_TOOLS, *RESPONDER_TOOLS]}), "nope", ""]
ARG_KEYS = ["location", "priority", "people_count", "needs", "case", "filter", "note", "x"]


@pytest.fixture(scope="module")
def tool_env() -> Iterator[tuple[asyncio.AbstractEventLoop, ToolRegistry[TurnContext], Services]]:
    loop = asyncio.new_event_loop()
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(Path(tmp) / "t.db")
        loop.run_until_complete(db.open())
        registry: ToolRegistry[TurnContext] = ToolRegistry()
        for tool in [*VICTIM_TOOLS, *RESPONDER_TOOLS]:
            registry.register(tool)
        s = make_settings(Path(tmp), "http://127.0.0.1:9")
        services = Services(db=db, settings=s, clock=lambda: 1_800_000_000.0)
        yield loop, registry, services
        loop.run_until_complete(db.close())
    loop.close()


def _row() -> InboxRow:
    return InboxRow(
        id=1, channel=Channel.SMS, dedup_key="k", peer="+8801700000000", conversation="c",
        order_key="o", role=Role.PUBLIC, needs_model=True, text="t", attachments=(), meta={},
        lang="en", priority=Priority.MEDIUM, status="processing", attempts=1, incident_id=None,
        error=None, received_at=0.0, created_at=0.0,
    )  # fmt: skip


@BOUNDED
@given(
    name=st.sampled_from(TOOL_NAMES),
    arguments=st.one_of(JSON, st.dictionaries(st.sampled_from(ARG_KEYS), JSON, max_size=5)),
    role=st.sampled_from(list(Role)),
)
def test_tool_calls_never_raise(
    tool_env: tuple[asyncio.AbstractEventLoop, ToolRegistry[TurnContext], Services],
    name: str,
    arguments: Any,
    role: Role,
) -> None:
    loop, registry, services = tool_env
    ctx = TurnContext(services, _row(), role, None)
    outcome = loop.run_until_complete(registry.call(name, arguments, role, ctx))
    assert isinstance(outcome, ToolOutcome)
    assert outcome.ok or "error" in outcome.result
    json.dumps(outcome.result, default=str)  # always serialisable back to the model
    if role is Role.PUBLIC and name in {t.name for t in RESPONDER_TOOLS} - {"get_incident_status"}:
        assert not outcome.ok


# ---- run-wide guarantees: personal data in logs, offline ---------------------------------

VICTIM = "+8801712345678"
SECRET_TEXT = "Rahima Khatun at house 12 Ulipur road"


async def test_full_sms_flow_offline_and_without_personal_data_in_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    redact.configure(log_bodies=False)
    with OllamaStandIn() as standin, block_outbound(fail=False) as guard:
        standin.push_chat(
            tool_reply(
                {
                    "name": "dispatch_rescue_team",
                    "arguments": {"location": "Ulipur road", "priority": "critical"},
                }
            ),
            text_reply("Team requested. Stay on the roof."),
        )
        settings = make_settings(tmp_path, standin.url, protocols={"embedder": "none"})
        async with running_gateway(settings) as gw:
            gw.sms_in(VICTIM, f"{SECRET_TEXT}, 5 people on the roof, water rising")
            await gw.wait_sent(VICTIM, 2)
            gw.sms_in(VICTIM, "STATUS")
            await gw.wait_sent(VICTIM, 3)
            await gw.idle()
    assert guard.attempts == [], guard.describe()  # nothing but loopback was even tried
    records = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert len(records) > 20
    leaks = [
        r.getMessage() for r in records if VICTIM in r.getMessage() or VICTIM[4:] in r.getMessage()
    ]
    assert leaks == []
    bodies = [r.getMessage() for r in records if SECRET_TEXT in r.getMessage()]
    assert bodies == []


async def test_bodies_not_logged_at_debug_unless_log_bodies(
    tmp_path: Path, ollama_standin: OllamaStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    redact.configure(log_bodies=False)
    ollama_standin.push_chat(text_reply("ok"))
    async with running_gateway(make_settings(tmp_path, ollama_standin.url)) as gw:
        gw.sms_in(VICTIM, f"{SECRET_TEXT} needs insulin")
        await gw.wait_sent(VICTIM, 2)
    leaks = [r.getMessage() for r in caplog.records if SECRET_TEXT in r.getMessage()]
    assert leaks == []


def test_redact_body_only_at_debug_with_log_bodies() -> None:
    root = logging.getLogger()
    old = root.level
    try:
        root.setLevel(logging.DEBUG)
        redact.configure(log_bodies=False)
        assert SECRET_TEXT not in redact.body(SECRET_TEXT)
        redact.configure(log_bodies=True)
        assert SECRET_TEXT in redact.body(SECRET_TEXT)
        root.setLevel(logging.INFO)
        assert SECRET_TEXT not in redact.body(SECRET_TEXT)
    finally:
        redact.configure(log_bodies=False)
        root.setLevel(old)
    assert VICTIM not in redact.mask_peer(VICTIM) and redact.mask_peer(VICTIM).endswith("678")


def test_gammu_refuses_what_no_network_delivers() -> None:
    """The modem never sees more than 50 parts: EncodeSMS refuses to build them."""
    with pytest.raises(gammu.ERR_INVALIDDATA):
        count_parts("x" * (51 * 153))
