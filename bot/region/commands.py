"""The regional commands, run by the responder's one command dispatcher (handlers/responder.py):
``!region``, ``!region cases``, ``!lend <team> <district> [hours]``, ``!return <team>``,
``!need <district|*> <kind> <count> [note]``. Lend, return and need are recorded in the publish
log in the same transaction as the inventory change, so what is published is what happened."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.commands import Command
from bot.region.mutual_aid import AidError, MutualAid
from bot.region.view import RegionFacts, cases_report, region_report
from bot.store import region_view as view
from bot.store.db import Database
from config.settings import RegionSettings

USAGE = {
    "region": "!region | !region cases",
    "lend": "!lend <team> <district> [hours]",
    "return": "!return <team> (yours, lent out) | !return <DISTRICT>/<team> (borrowed)",
    "need": "!need <district|*> <boat|medical|supply> <count> [note]",
}
HELP_LINES = """\
!region [cases] - every district: open cases, free teams, last heard; or their open cases
!lend <team> <district> [hours] - lend a free team to another district (coordinators)
!return <team> - take a lent team back, or hand a borrowed DISTRICT/team back (coordinators)
!need <district|*> <kind> <count> [note] - ask other districts for teams (coordinators)"""
NAMES = frozenset(USAGE)


@dataclass
class RegionCommands:
    settings: RegionSettings
    db: Database
    clock: Callable[[], float]
    aid: MutualAid
    help: str = HELP_LINES

    async def run(self, cmd: Command) -> str:
        try:
            match cmd.name, cmd.args:
                case "region", ():
                    return region_report(await self.facts())
                case "region", ("cases",):
                    return cases_report(await self.facts())
                case "lend", (team, to):
                    return await self._lend(team, to, None)
                case "lend", (team, to, hours):
                    return await self._lend(team, to, _hours(hours))
                case "return", (team,):
                    async with self.db.transaction() as conn:
                        return await self.aid.give_back(conn, team, self.clock())
                case "need", (to, kind, count, *_):
                    note = cmd.rest.split(None, 3)[3] if len(cmd.args) > 3 else ""
                    async with self.db.transaction() as conn:
                        return await self.aid.need(
                            conn, to, kind, _count(count), note, self.clock()
                        )
        except AidError as exc:
            return f"Cannot do that: {exc}"
        return f"Use {USAGE[cmd.name]}"

    async def _lend(self, team: str, to: str, hours: float | None) -> str:
        async with self.db.transaction() as conn:
            return await self.aid.lend(
                conn, team, to, hours, set(self.settings.peers), self.clock()
            )

    async def facts(self) -> RegionFacts:
        s = self.settings
        return RegionFacts(
            now=self.clock(),
            me=s.district,
            expected=[s.district, *sorted(s.peers)],
            silent_after_s=s.silent_after_min * 60,
            districts=await view.districts(self.db),
            cases=await view.open_cases(self.db),
            teams=await view.teams(self.db),
            needs=await view.needs(self.db),
            lends=await view.lends(self.db),
        )


def _hours(text: str) -> float:
    try:
        hours = float(text)
    except ValueError:
        raise AidError(f"hours is a number, e.g. 6 (got {text!r})") from None
    if not 0 < hours <= 24 * 14:
        raise AidError("hours is between 0 and 336")
    return hours


def _count(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 100:
        raise AidError(f"count is a whole number from 1 to 100 (got {text!r})")
    return int(text)
