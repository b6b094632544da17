"""The SMS package's small pure pieces: number checks, timestamps, error kinds, watchdog delays."""

from __future__ import annotations

from datetime import UTC, datetime

import gammu
import pytest

from bot.errors import PermanentError, TransientError
from bot.redact import mask_peer
from bot.transports.sms.codec import smsc_iso, valid_number
from bot.transports.sms.errors import (
    ModemError,
    PermanentSendError,
    ReceiveHandlerError,
    SendError,
    TransientSendError,
    is_link_error,
)
from bot.transports.sms.health import ModemState


@pytest.mark.parametrize(
    ("number", "ok"),
    [("+8801711000123", True), ("01711000123", True), ("ALERT", False), ("+88 017", False)],
)
def test_valid_number(number: str, ok: bool) -> None:
    assert valid_number(number) is ok


def test_sms_logs_use_the_one_masker() -> None:
    # bot/redact.py is the one masker (tests/test_redact.py); the SMS channel has no own copy.
    import bot.transports.sms as sms

    assert not hasattr(sms, "mask_number")
    assert mask_peer("+8801711000123") == "+88017*****123"


def test_smsc_iso_reads_the_deliver_timestamp() -> None:
    when = datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert smsc_iso({"DateTime": when, "SMSCDateTime": "now"}) == when.isoformat()
    assert smsc_iso({}) == ""


def test_send_errors_are_classified_by_kind() -> None:
    transient, permanent = TransientSendError("modem down"), PermanentSendError("bad number")
    assert isinstance(transient, SendError) and isinstance(transient, TransientError)
    assert isinstance(permanent, SendError) and isinstance(permanent, PermanentError)
    assert (transient.transient, transient.reason) == (True, "modem down")
    assert (permanent.transient, permanent.reason) == (False, "bad number")
    assert str(transient) == "transient: modem down"
    assert str(permanent) == "permanent: bad number"
    assert isinstance(ModemError("x"), TransientError)
    assert isinstance(ReceiveHandlerError("x"), TransientError)


def test_link_errors_are_told_from_request_errors() -> None:
    assert is_link_error(gammu.ERR_TIMEOUT({"Text": "t", "Where": "w", "Code": 14}))
    assert is_link_error(gammu.ERR_DEVICEOPENERROR({"Text": "t", "Where": "w", "Code": 2}))
    assert not is_link_error(gammu.ERR_INVALIDDATA({"Text": "t", "Where": "w", "Code": 1}))


def test_watchdog_delay_doubles_up_to_the_cap_without_jitter() -> None:
    state = ModemState("m", lambda: 0.0, backoff_initial_s=1.0, backoff_max_s=60.0)
    delays = []
    for _ in range(8):
        state.fail("x")
        delays.append(state.reinit_delay())
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    state.ok()
    assert state.consecutive_errors == 0


def test_five_request_errors_in_a_row_take_the_modem_down() -> None:
    state = ModemState("m", lambda: 0.0, backoff_initial_s=1.0, backoff_max_s=60.0)
    state.set("up")
    for _ in range(4):
        state.send_failed("busy")
    assert state.state == "up"
    state.send_failed("busy")
    assert state.state == "down"
    assert state.snapshot().last_error == "busy"
