"""Where the board listens: loopback by default, a LAN address only when set and then logged
loudly; a board that cannot listen never stops the gateway. No homeserver: nobody logs in."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest

from bot.synapse_local import free_port
from tests.harness.board_client import board_up, http, login_status
from tests.harness.gateway import make_settings, running_gateway
from tests.harness.ollama_standin import OllamaStandIn, text_reply


async def test_lan_bind_is_logged_loudly_and_login_needs_a_homeserver(
    tmp_path: Path, ollama_standin: OllamaStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    settings = make_settings(
        tmp_path, ollama_standin.url, board={"enabled": True, "bind": "0.0.0.0", "port": port}
    )
    with caplog.at_level(logging.INFO, logger="bot.board"):
        async with running_gateway(settings) as gw:
            base = await board_up(gw)
            loud = [
                r
                for r in caplog.records
                if r.name == "bot.board.server" and r.levelno == logging.WARNING
            ]
            assert len(loud) == 1 and "NOT loopback" in loud[0].getMessage()
            async with http() as client:
                got = await login_status(client, base, user="@amina:hs", password="pw")
                assert got == (303, "/login?error=unavailable")  # [matrix] is off here


async def test_default_bind_is_loopback_and_a_taken_port_does_not_stop_the_gateway(
    tmp_path: Path, ollama_standin: OllamaStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    assert make_settings(tmp_path, ollama_standin.url).board.bind == "127.0.0.1"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = make_settings(
            tmp_path, ollama_standin.url, board={"enabled": True, "port": port}
        )
        ollama_standin.push_chat(text_reply("Stay on the roof. Help is being arranged."))
        with caplog.at_level(logging.INFO, logger="bot.board"):
            async with running_gateway(settings) as gw:
                gw.sms_in("+8801711111111", "Water rising, we are on the roof")
                await gw.wait_sent("+8801711111111", 2)  # the ack and the model's reply
                errors = [r for r in caplog.records if r.levelno == logging.ERROR]
                assert any("cannot listen" in r.getMessage() for r in errors)
                assert gw.app.board is not None and gw.app.board.url is None
                assert not gw.task.done()
