"""The drill's debrief: a terminal summary, per-victim times (CSV + JSON) and a PNG timeline.

Everything is derived into ``drill.json`` once; ``lifeline drill report DIR`` re-renders the
summary, the CSV and the picture from that file alone."""

from __future__ import annotations

import csv
import json
import statistics
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bot.drill.checks import Evidence, Result

VICTIM_COLUMNS = [
    "victim",
    "number",
    "lang",
    "kind",
    "life_threat",
    "people",
    "first_at_s",
    "case",
    "priority",
    "ack_s",
    "alert_s",
    "reply_s",
    "dispatch_requested_s",
    "approved_s",
    "arrived_s",
    "resolved_s",
    "channel",  # sms | matrix
    "media",  # voice | photo (Matrix victims)
    "waited_s",  # a Matrix victim's client retrying while the homeserver was down
]
PRIORITY = {0: "critical", 1: "high", 2: "medium", 3: "low"}
FAULT_COLOURS = {
    "homeserver_down": "tab:purple",
    "model_down": "tab:red",
    "model_slow": "tab:orange",
    "model_garbage": "tab:brown",
    "gateway_kill": "black",
    "model_drop_tools": "tab:pink",
    "modem_unplugged": "tab:olive",
    "sim_blocked": "tab:cyan",
}


def _first(values: list[float], since: float) -> float | None:
    later = [v for v in values if v >= since - 1.0]
    return round(min(later) - since, 2) if later else None


def victims(ev: Evidence) -> list[dict[str, Any]]:
    t0 = ev.journal.started
    rows = []
    for number, inj in ev.first_injections().items():
        inc = ev.incident_of(number)
        case = inc["case_code"] if inc else ""
        iid = inc["id"] if inc else None
        audit = [a for a in ev.db.audit if iid is not None and a["incident_id"] == iid]

        def at(action: str, audit: list[dict[str, Any]] = audit) -> list[float]:
            return [a["at"] for a in audit if a["action"] == action]

        replies = [
            o["sent_at"]
            for o in ev.db.outbox
            if o["peer"] == number
            and o["sent_at"]
            and str(o["idem_key"]).startswith(("reply:", "fallback:"))
        ]
        rows.append(
            {
                "victim": inj.victim,
                "number": number,
                "lang": inj.lang,
                "kind": inj.kind,
                "life_threat": inj.life_threat,
                "people": inj.people,
                "first_at_s": round(inj.t - t0, 2),
                "case": case,
                "priority": PRIORITY.get(inc["priority"], "") if inc else "",
                "ack_s": _first(ev.answers_to(inj), inj.t),
                "alert_s": _first(
                    [n.t for n in ev.journal.notices if case and case in n.body], inj.t
                ),
                "reply_s": _first(replies, inj.t),
                "dispatch_requested_s": _first(
                    [d["created_at"] for d in ev.db.dispatches if d["incident_id"] == iid], inj.t
                ),
                "approved_s": _first(at("dispatch.assigned"), inj.t),
                "arrived_s": _first(at("dispatch.arrived"), inj.t),
                "resolved_s": _first(at("incident.resolved"), inj.t),
                "channel": inj.channel,
                "media": inj.media,
                "waited_s": round(inj.waited_s, 2),
            }
        )
    return rows


def build(ev: Evidence, results: list[Result]) -> dict[str, Any]:
    j = ev.journal
    t0 = j.started
    return {
        "scenario": j.scenario,
        "started": t0,
        "ended": j.ended,
        "humans": j.humans,
        "send_per_minute": j.send_per_minute,
        "budgets": j.budgets,
        "promises": [
            {
                "promise": r.promise,
                "title": r.title,
                "ok": r.ok,
                "checked": r.checked,
                "worst": r.worst,
                "notes": r.notes,
                "violations": [{**asdict(v), "at_s": round(v.at - t0, 2)} for v in r.violations],
            }
            for r in results
        ],
        "victims": victims(ev),
        "faults": [
            {
                "kind": f.kind,
                "start_s": round(f.start - t0, 2),
                "end_s": round((f.end if f.end is not None else j.ended) - t0, 2),
                "note": f.note,
                "target": f.target,
            }
            for f in j.faults
        ],
        "samples": [
            {
                "t_s": round(s.t - t0, 2),
                "inbox": s.inbox_pending,
                "outbox": s.outbox_pending,
                "sent": s.sent,
            }
            for s in j.samples
            if s.t >= t0
        ],
        "injected_s": [round(i.t - t0, 2) for i in j.injected],
        "matrix_in": sum(1 for i in j.injected if i.channel == "matrix"),
        "media_in": {k: sum(1 for i in j.injected if i.media == k) for k in ("voice", "photo")},
    }


def write(out: Path, data: dict[str, Any]) -> None:
    (out / "drill.json").write_text(
        json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8"
    )
    render_files(out, data)


def render_files(out: Path, data: dict[str, Any]) -> None:
    with (out / "victims.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=VICTIM_COLUMNS)
        w.writeheader()
        for row in data["victims"]:
            w.writerow({k: ("" if row.get(k) is None else row[k]) for k in VICTIM_COLUMNS})
    (out / "victims.json").write_text(
        json.dumps(data["victims"], ensure_ascii=False, indent=1), encoding="utf-8"
    )
    timeline_png(data, out / "timeline.png")


def load(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / "drill.json").read_text(encoding="utf-8"))
    return data


def passed(data: dict[str, Any]) -> bool:
    return all(p["ok"] for p in data["promises"])


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f} s"


def summary(data: dict[str, Any], console: Console) -> None:
    acks = [v["ack_s"] for v in data["victims"] if v["ack_s"] is not None]
    alerts = [
        v["alert_s"] for v in data["victims"] if v["life_threat"] and v["alert_s"] is not None
    ]
    approved = [v["approved_s"] for v in data["victims"] if v["approved_s"] is not None]
    minutes = max((data["ended"] - data["started"]) / 60, 1e-9)
    console.rule(f"[bold]Drill debrief: {escape(data['scenario'])}")
    on_matrix = data.get("matrix_in", 0)
    media = data.get("media_in", {})
    matrix = (
        f" + {on_matrix} Matrix DMs ({media.get('voice', 0)} voice notes, "
        f"{media.get('photo', 0)} photos)"
        if on_matrix
        else ""
    )
    console.print(
        f"{len(data['victims'])} senders, {len(data['injected_s']) - on_matrix} SMS{matrix} in "
        f"{minutes:.1f} min ({len(data['victims']) / minutes:.1f} senders/min); "
        f"faults: {', '.join(f['kind'] for f in data['faults']) or 'none'}"
    )
    console.print(
        f"time to ack  p50 {_fmt(_pct(acks, 50))}  p95 {_fmt(_pct(acks, 95))}  "
        f"max {_fmt(max(acks) if acks else None)}   |   critical → coordinators "
        f"p50 {_fmt(_pct(alerts, 50))}  max {_fmt(max(alerts) if alerts else None)}   |   "
        f"dispatch approved p50 {_fmt(_pct(approved, 50))}"
    )
    table = Table(title="Promises")
    for col in ("promise", "result", "checked", "worst / first violations"):
        table.add_column(col, overflow="fold")
    for p in data["promises"]:
        detail = "\n".join(
            f"+{v['at_s']:.0f}s {v['subject']}: {v['evidence']}" for v in p["violations"][:3]
        )
        if len(p["violations"]) > 3:
            detail += f"\n… {len(p['violations']) - 3} more"
        table.add_row(
            escape(p["title"]),
            "[green]PASS[/]" if p["ok"] else f"[red]FAIL ({len(p['violations'])})[/]",
            str(p["checked"]),
            escape(detail or p["worst"] or ""),
        )
    console.print(table)
    slow = sorted((v for v in data["victims"] if v["ack_s"] is not None), key=lambda v: -v["ack_s"])
    if slow:
        console.print(
            "slowest acks: "
            + ", ".join(f"{escape(v['victim'])} {v['ack_s']:.1f} s" for v in slow[:5])
        )
    console.print(
        "[bold green]all promises kept[/]" if passed(data) else "[bold red]promises broken[/]"
    )


def timeline_png(data: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (load_ax, ack_ax) = plt.subplots(2, 1, figsize=(10, 6), sharex=True, dpi=80)
    samples = data["samples"]
    end = max([s["t_s"] for s in samples] + data["injected_s"] + [1.0])
    width = max(end / 40, 1.0)
    load_ax.hist(
        data["injected_s"],
        bins=max(int(end / width), 1),
        color="tab:blue",
        alpha=0.35,
        label=f"messages in (per {width:.0f} s)",
    )
    load_ax.plot(
        [s["t_s"] for s in samples],
        [s["inbox"] for s in samples],
        color="tab:blue",
        label="inbox waiting",
    )
    load_ax.plot(
        [s["t_s"] for s in samples],
        [s["outbox"] for s in samples],
        color="tab:green",
        label="outbox waiting",
    )
    load_ax.set_ylabel("messages")
    ackers = [v for v in data["victims"] if v["ack_s"] is not None]
    for crit, colour, label in ((False, "tab:gray", "ack"), (True, "tab:red", "ack (life threat)")):
        pts = [v for v in ackers if bool(v["life_threat"]) == crit]
        ack_ax.scatter(
            [v["first_at_s"] for v in pts],
            [v["ack_s"] for v in pts],
            s=10,
            color=colour,
            label=label,
        )
    approved = [v for v in data["victims"] if v["approved_s"] is not None]
    ack_ax.scatter(
        [v["first_at_s"] for v in approved],
        [v["approved_s"] for v in approved],
        s=14,
        marker="x",
        color="tab:purple",
        label="dispatch approved",
    )
    bins: dict[int, list[float]] = {}
    for v in ackers:
        bins.setdefault(int(v["first_at_s"] // (width * 4)), []).append(v["ack_s"])
    xs = sorted(bins)
    for q, style in ((50, "-"), (95, "--")):
        ack_ax.step(
            [(x + 0.5) * width * 4 for x in xs],
            [_pct(bins[x], q) for x in xs],
            where="mid",
            linestyle=style,
            color="black",
            label=f"ack p{q}",
        )
    ack_ax.set_ylabel("seconds after first SMS")
    ack_ax.set_xlabel("seconds since drill start (wall)")
    seen: set[str] = set()
    for f in data["faults"]:
        colour = FAULT_COLOURS.get(f["kind"], "tab:gray")
        for ax in (load_ax, ack_ax):
            ax.axvspan(
                f["start_s"],
                f["end_s"],
                color=colour,
                alpha=0.15,
                label=None if f["kind"] in seen or ax is ack_ax else f["kind"],
            )
        seen.add(f["kind"])
    load_ax.legend(loc="upper right", fontsize=7)
    ack_ax.legend(loc="upper right", fontsize=7)
    verdict = "all promises kept" if passed(data) else "PROMISES BROKEN"
    load_ax.set_title(f"{data['scenario']} — {verdict}")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
