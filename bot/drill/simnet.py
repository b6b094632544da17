"""``python -m bot.drill.simnet --config … run``: the gateway on a simulated network that can bar
a SIM from sending (the drill's ``sim_blocked`` fault).

libGammu's dummy driver accepts every SMS-SUBMIT (it has no network), so a barred SIM cannot be
played through files alone. Here the dummy StateMachine is wrapped so that SendSMS answers the way
a modem on a barred SIM does, with a CMS error (gammu ``ERR_UNKNOWN``), while
``<device>/network-barred`` exists; everything else is the real driver and the unchanged gateway.
Only drill gateways run this; production and the test suite's gateways never do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gammu

from bot.drill.hardware import BARRED

_BARRED_ERROR = {"Text": "+CMS ERROR: 38 (network out of order: SIM barred)", "Where": "SendSMS"}


class NetworkStateMachine(gammu.StateMachine):  # type: ignore[misc]  # untyped C extension
    """The dummy phone, with the simulated network's answer to a barred SIM."""

    _device = ""

    def SetConfig(self, section: int, config: dict[str, Any]) -> Any:
        if config.get("Model") == "dummy":
            self._device = str(config.get("Device") or "")
        return super().SetConfig(section, config)

    def SendSMS(self, message: dict[str, Any]) -> Any:
        if self._device and (Path(self._device) / BARRED).exists():
            raise gammu.ERR_UNKNOWN({**_BARRED_ERROR, "Code": gammu.Errors["ERR_UNKNOWN"]})
        return super().SendSMS(message)


def install() -> None:
    gammu.StateMachine = NetworkStateMachine


def main() -> None:
    install()
    from bot.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
