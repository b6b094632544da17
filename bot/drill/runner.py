"""Play a scenario against a real gateway and collect the evidence for the checks.

Everything goes through the doors real traffic uses: SMS are written into the libGammu dummy
modems' SIM inboxes (bot.sim), staff commands are posted in the coordination room by real
accounts, faults stop and start real processes (the drill's own Synapse, the gateway with
SIGKILL) or switch the model stand-in's behaviour."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot import sim
from bot.drill import checks, hardware, plan
from bot.drill.gateway import GatewayProcess, gateway_config
from bot.drill.journal import FaultSpan, Injected, Journal, JournalWriter, Sample
from bot.drill.model import DrillModel
from bot.drill.scenario import MODEM_FAULTS, Fault, Scenario
from bot.drill.staff import Accounts, Observer, Staff, create_room, register_accounts
from bot.drill.victims import MatrixVictims, register_victims
from bot.store import snapshot
from bot.synapse_local import LocalSynapse, SynapseError, free_port

log = logging.getLogger(__name__)

SAMPLE_EVERY_S = 1.0


@dataclass
class Options:
    humans: bool = False
    speed: float | None = None
    model_host: str | None = None
    say: Callable[[str], None] = print
    gateway_module: str | None = None  # None: hardware.gateway_module (bench/drill_revert_fix.py)


def sent_record(devices: dict[str, Path]) -> list[checks.Sent]:
    out: list[checks.Sent] = []
    for m in sim.read_outbox(devices):
        digest = Path(m["path"]).name.split("-", 1)[1].removesuffix(sim.SENT_SUFFIX)
        out.append(checks.Sent(float(m["time"]), str(m["to"]), str(m["text"]), digest))
    return out


def _sent_count(devices: dict[str, Path]) -> int:
    return sum(
        len(list((d / sim.SENT_DIR).glob(f"*{sim.SENT_SUFFIX}")))
        for d in devices.values()
        if (d / sim.SENT_DIR).is_dir()
    )


class DrillRun:
    def __init__(self, sc: Scenario, out: Path, opts: Options) -> None:
        if opts.speed is not None:
            sc = sc.model_copy(update={"speed": opts.speed})
        self.sc = sc
        self.out = out.resolve()
        self.opts = opts
        self.planned = plan.build(sc)
        self.journal = Journal(
            scenario=sc.name,
            humans=opts.humans,
            send_per_minute=sc.sim.send_per_minute * sc.sim.modems,
            budgets=sc.promises.model_dump(),
        )
        self.devices = {f"sim{i + 1}": self.out / f"modem-sim{i + 1}" for i in range(sc.sim.modems)}
        self.db_path = self.out / "lifeline.db"
        self.hs: LocalSynapse | None = None
        self.model: DrillModel | None = None
        self.gateway: GatewayProcess | None = None
        self.staff: Staff | None = None
        self.victims: MatrixVictims | None = None
        self._gateway_lock = asyncio.Lock()
        self._stamps: dict[str, int] = {}

    # ---- set-up --------------------------------------------------------------------------

    async def _start_homeserver(self) -> LocalSynapse:
        last: Exception | None = None
        for attempt in range(3):
            # A fixed port: the homeserver_down fault restarts it where the gateway looks for it.
            hs = LocalSynapse(self.out / f"synapse-{attempt}", port=free_port())
            try:
                await asyncio.to_thread(hs.start)
                return hs
            except SynapseError as exc:  # e.g. the probed free port was taken meanwhile
                last = exc
                await asyncio.to_thread(hs.stop)
        raise SynapseError(f"the drill homeserver did not start: {last}")

    def _model_host(self) -> str:
        host = self.opts.model_host or self.sc.model.host
        if host:
            return host
        self.model = DrillModel(
            self.planned,
            omit_people_count=self.sc.model.omit_people_count,
            reply_delay_s=self.sc.model.reply_delay_s,
        )
        self.model.start()
        return self.model.url

    def _config(self, accounts: Accounts, room_id: str, model_host: str) -> dict[str, Any]:
        assert self.hs is not None
        matrix = {
            "enabled": True,
            "homeserver": self.hs.url,
            "user_id": accounts.bot.user_id,
            "password": accounts.bot.password,
            "store_path": str(self.out / "matrix-store"),
            "coordination_room": room_id,
            "coordinators": [a.user_id for a in accounts.coordinators],
            "responders": [a.user_id for a in accounts.responders],
            "encryption": False,
            "sync_timeout_s": 5,
        }
        config = gateway_config(
            self.out,
            modems=self.sc.sim.modems,
            send_per_minute=self.sc.sim.send_per_minute,
            model_host=model_host,
            matrix=matrix,
            teams=[plan.team_config(t) for t in self.sc.teams],
            overrides=self.sc.gateway,
        )
        return hardware.tune(config, self.sc)

    # ---- the drill -----------------------------------------------------------------------

    async def run(self) -> tuple[checks.Evidence, list[checks.Result]]:
        self.out.mkdir(parents=True, exist_ok=True)
        logging.getLogger("nio").setLevel(logging.ERROR)  # its retries while a homeserver is down
        writer = JournalWriter(self.out / "journal.jsonl", self.journal)
        tasks: list[asyncio.Task[Any]] = []
        observer: Observer | None = None
        try:
            say = self.opts.say
            say(
                f"drill {self.sc.name!r}: {len(self.planned)} messages over "
                f"{self.sc.wall(self.sc.duration_s):.0f} s (speed {self.sc.speed:g}); in {self.out}"
            )
            self.hs = await self._start_homeserver()
            accounts = await asyncio.to_thread(register_accounts, self.hs, self.sc.staff)
            self.journal.staff = accounts.staff_ids()
            on_matrix = sorted({p.number for p in self.planned if p.channel == "matrix"})
            victim_accounts = await asyncio.to_thread(register_victims, self.hs, on_matrix)
            room_id = await create_room(self.hs, accounts, f"Lifeline drill: {self.sc.name}")
            (self.out / "accounts.json").write_text(
                json.dumps(
                    {"homeserver": self.hs.url, "room": room_id, **accounts.as_json()}, indent=2
                ),
                encoding="utf-8",
            )
            model_host = self._model_host()
            self.gateway = GatewayProcess(
                self.out,
                self._config(accounts, room_id, model_host),
                module=self.opts.gateway_module or hardware.gateway_module(self.sc),
            )
            if not self.opts.humans:
                self.staff = Staff(self.hs, accounts, room_id, self.sc.staff, self.sc.speed, writer)
            on_notice = self.staff.on_notice if self.staff else (lambda _n: None)
            observer = Observer(
                self.hs, accounts.observer, room_id, accounts.bot.user_id, writer, on_notice
            )
            tasks.append(asyncio.create_task(observer.run(), name="drill-observer"))
            await asyncio.wait_for(observer.synced.wait(), 60)
            writer.gateway_started(await self.gateway.start())
            if self.opts.humans:
                say(
                    f"Element: homeserver {self.hs.url}, room {room_id}; staff accounts and "
                    f"passwords in {self.out / 'accounts.json'}"
                )
            self.journal.started = time.time()
            self.journal.model_observed = self.model is not None
            writer.meta()
            self.victims = MatrixVictims(
                self.hs, victim_accounts, accounts.bot.user_id, writer, self._at
            )
            tasks.append(asyncio.create_task(self._sampler(writer), name="drill-sampler"))
            faults = [
                asyncio.create_task(self._fault(f, writer), name=f"drill-fault-{f.kind}")
                for f in self.sc.faults
            ]
            await self._play(writer)
            await asyncio.gather(*faults)
            await self._settle()
            self.journal.ended = time.time()
            writer.meta()
            await asyncio.sleep(2.0)  # the last samples and notices
            self._model_media(writer)
            return await asyncio.to_thread(self._check)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if self.victims is not None:
                await self.victims.close()
            if self.staff is not None:
                await self.staff.close()
            if self.gateway is not None:
                await self.gateway.stop()
            if self.model is not None:
                self.model.stop()
            if self.hs is not None:
                await asyncio.to_thread(self.hs.stop)
            writer.close()

    def _at(self, scenario_s: float) -> float:
        return self.journal.started + self.sc.wall(scenario_s)

    async def _sleep_until(self, wall: float) -> None:
        delay = wall - time.time()
        if delay > 0:
            await asyncio.sleep(delay)

    async def _play(self, writer: JournalWriter) -> None:
        for p in self.planned:
            await self._sleep_until(self._at(p.at_s))
            if p.channel == "matrix":
                assert self.victims is not None
                self.victims.send(p)
            else:
                await self._inject(p, writer)
        await self._sleep_until(self._at(self.sc.duration_s))

    async def _inject(self, p: plan.PlannedSms, writer: JournalWriter) -> None:
        # SMSC timestamps have one-second resolution: two texts from one number in the same
        # second cannot be ordered by anyone (and the same text twice is the network repeating
        # one message). A person's next text comes a second later at least.
        if self._stamps.get(p.number) == int(time.time()):
            await asyncio.sleep(1.02 - time.time() % 1)
        now = time.time()
        self._stamps[p.number] = int(now)
        name = f"sim{p.modem + 1}"
        when = datetime.fromtimestamp(now, UTC)
        await asyncio.to_thread(sim.inject_sms, self.devices[name], p.number, p.text, when=when)
        writer.inject(
            Injected(now, p.number, p.text, p.victim, p.kind, p.lang, p.life_threat, p.people, name)
        )

    def _model_media(self, writer: JournalWriter) -> None:
        for seen in self.model.take_media() if self.model is not None else []:
            writer.model_media(seen)

    async def _sampler(self, writer: JournalWriter) -> None:
        while True:
            self._model_media(writer)
            if self.db_path.exists():
                try:
                    inbox, outbox = await asyncio.to_thread(snapshot.pending, self.db_path)
                    sent = await asyncio.to_thread(_sent_count, self.devices)
                    writer.sample(Sample(time.time(), inbox, outbox, sent))
                except Exception as exc:  # noqa: BLE001  (a locked/absent db: sample next time)
                    log.debug("sample failed: %s", exc)
            await asyncio.sleep(SAMPLE_EVERY_S)

    async def _fault(self, f: Fault, writer: JournalWriter) -> None:
        await self._sleep_until(self._at(f.at_s))
        span = FaultSpan(f.kind, time.time())
        if f.kind in MODEM_FAULTS:
            span.target = hardware.device_name(f.modem)
        writer.fault(span)
        self.opts.say(f"fault: {f.kind} for {self.sc.wall(f.for_s):.0f} s")
        if f.kind == "homeserver_down":
            assert self.hs is not None
            await asyncio.to_thread(self.hs.stop)
            await asyncio.sleep(self.sc.wall(f.for_s))
            await self._restart_homeserver()
        elif f.kind.startswith("model_"):
            if self.model is None:
                span.note = "not applied: the model is a real Ollama"
                await asyncio.sleep(self.sc.wall(f.for_s))
            else:
                self.model.set_fault(f.kind.removeprefix("model_"), f.delay_s)
                await asyncio.sleep(self.sc.wall(f.for_s))
                self.model.set_fault(None)
        elif f.kind in MODEM_FAULTS:
            await asyncio.to_thread(hardware.start, f.kind, self.devices[span.target])
            await asyncio.sleep(self.sc.wall(f.for_s))
            await asyncio.to_thread(hardware.end, f.kind, self.devices[span.target])
        elif f.kind == "gateway_kill":
            assert self.gateway is not None
            async with self._gateway_lock:
                await self.gateway.kill9()
                await asyncio.sleep(self.sc.wall(f.for_s))
                writer.gateway_started(await self.gateway.start())
        span.end = time.time()
        writer.fault(span)
        self.opts.say(f"fault over: {f.kind}")

    async def _restart_homeserver(self) -> None:
        """Back on the same port; a slow start on a loaded machine is tried again."""
        assert self.hs is not None
        for attempt in range(1, 6):
            try:
                await asyncio.to_thread(self.hs.start)
                return
            except SynapseError as exc:
                if attempt == 5:
                    raise
                log.warning("drill homeserver restart failed (%s); again in 2 s", exc)
                await asyncio.to_thread(self.hs.stop)
                await asyncio.sleep(2.0)

    async def _settle(self) -> None:
        """After the timeline: let staff finish and the queues drain (bounded)."""
        limit = time.time() + self.sc.promises.drain_within_s + 60
        staff_busy, pending, sim_left = False, (0, 0), False
        while time.time() < limit:
            staff_busy = self.staff is not None and self.staff.busy
            staff_busy |= self.victims is not None and self.victims.busy
            pending = await asyncio.to_thread(snapshot.pending, self.db_path)
            sim_left = any(sim.inbox_files(d) for d in self.devices.values())
            # A DM the homeserver accepted waits for the gateway's next sync (after an outage
            # its sync backs off): not settled until the inbox has it.
            sim_left |= await asyncio.to_thread(self._matrix_unsynced) > 0
            if not staff_busy and pending == (0, 0) and not sim_left:
                return
            await asyncio.sleep(1.0)
        self.opts.say(
            f"not settled in time (staff busy {staff_busy}, inbox/outbox waiting {pending}, "
            f"SIM inbox or Matrix DMs not yet read {sim_left}); checking what there is"
        )

    def _matrix_unsynced(self) -> int:
        sent = {i.event_id for i in self.journal.injected if i.channel == "matrix"}
        if not sent:
            return 0
        stored = {r["dedup_key"] for r in snapshot.read(self.db_path).inbox}
        return len(sent - stored)

    def _check(self) -> tuple[checks.Evidence, list[checks.Result]]:
        ev = checks.Evidence(self.journal, snapshot.read(self.db_path), sent_record(self.devices))
        return ev, checks.run_all(ev)
