"""A thin layer over APScheduler 3's AsyncIOScheduler: a job only calls an async function that
enqueues outbox rows; it never sends anything itself.

Jobs are not persisted by APScheduler (no SQLAlchemy job store): their definitions live in the
``broadcasts`` table and are registered again at every start. Every job coalesces missed runs into
one (``coalesce=True``), runs late by at most ``misfire_grace_s`` and never overlaps itself
(``max_instances=1``). A job body that raises is logged here; CancelledError is never swallowed."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

log = logging.getLogger(__name__)

JobBody = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class JobInfo:
    id: str
    next_run_at: float | None
    every_s: float | None


class Scheduler:
    def __init__(
        self,
        *,
        misfire_grace_s: int,
        on_missed: Callable[[str], None] = lambda _job_id: None,
    ) -> None:
        self.misfire_grace_s = misfire_grace_s
        self._on_missed = on_missed
        self._sched = AsyncIOScheduler(
            timezone=UTC,
            job_defaults={
                "coalesce": True,
                "misfire_grace_time": misfire_grace_s,
                "max_instances": 1,
            },
        )
        self._sched.add_listener(self._event, EVENT_JOB_MISSED | EVENT_JOB_ERROR)

    @property
    def running(self) -> bool:
        return bool(self._sched.running)

    def start(self) -> None:
        """Start on the running event loop (call from a coroutine)."""
        if not self._sched.running:
            self._sched.start()
            log.info(
                "scheduler started (%d job(s), misfire grace %d s)",
                len(self._sched.get_jobs()),
                self.misfire_grace_s,
            )

    def shutdown(self) -> None:
        if self._sched.running:
            self._sched.shutdown(wait=False)
            log.info("scheduler stopped")

    def every(self, job_id: str, minutes: int, anchor: float, body: JobBody) -> None:
        """Run ``body`` at ``anchor + k * minutes`` (the next such slot from now on)."""
        trigger = IntervalTrigger(
            minutes=minutes, start_date=datetime.fromtimestamp(anchor, UTC), timezone=UTC
        )
        self._sched.add_job(
            self._wrap(job_id, body), trigger, id=job_id, name=job_id, replace_existing=True
        )
        log.info("job %s: every %d min, next %s", job_id, minutes, self._next(job_id))

    def once(self, job_id: str, at: float, body: JobBody) -> None:
        trigger = DateTrigger(run_date=datetime.fromtimestamp(at, UTC), timezone=UTC)
        self._sched.add_job(
            self._wrap(job_id, body), trigger, id=job_id, name=job_id, replace_existing=True
        )
        log.info("job %s: once at %s", job_id, self._next(job_id))

    def remove(self, job_id: str) -> bool:
        if self._sched.get_job(job_id) is None:
            return False
        self._sched.remove_job(job_id)
        log.info("job %s removed", job_id)
        return True

    def jobs(self) -> list[JobInfo]:
        out: list[JobInfo] = []
        for job in self._sched.get_jobs():
            nrt = getattr(job, "next_run_time", None)
            trig = job.trigger
            every = trig.interval_length if isinstance(trig, IntervalTrigger) else None
            out.append(JobInfo(job.id, nrt.timestamp() if nrt else None, every))
        return out

    def job(self, job_id: str) -> Any:
        """The APScheduler Job (tests and diagnostics)."""
        return self._sched.get_job(job_id)

    def _next(self, job_id: str) -> str:
        job = self._sched.get_job(job_id)
        nrt = getattr(job, "next_run_time", None) if job is not None else None
        if nrt is None:
            # Not started yet: compute from the trigger.
            if job is None:
                return "?"
            nrt = job.trigger.get_next_fire_time(None, datetime.now(UTC))
        return "never" if nrt is None else nrt.isoformat(timespec="seconds")

    @staticmethod
    def _wrap(job_id: str, body: JobBody) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            try:
                await body()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("job %s failed; it runs again at its next slot", job_id)

        return run

    def _event(self, event: JobExecutionEvent) -> None:
        if event.code == EVENT_JOB_MISSED:
            log.error(
                "job %s MISSED its run at %s (more than %d s late)",
                event.job_id,
                event.scheduled_run_time,
                self.misfire_grace_s,
            )
            self._on_missed(event.job_id)
        elif event.exception is not None:
            log.error("job %s raised: %r", event.job_id, event.exception)
