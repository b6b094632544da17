"""kill -9 of the gateway process, then a restart: nothing lost, nothing dispatched twice, each
reply sent once per idempotency key (invariants 1 and 3).

At-least-once on the wire is the documented choice for SMS: a kill exactly between libGammu
accepting a message and the 'sent' commit re-sends it after restart. The dummy modem records
every accepted message under ``<device>/sent/<ns>-<sha256(idem_key)[:16]>``, so such repeats are
counted here (per idempotency key) and bounded, not hidden."""

from __future__ import annotations

import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tests.harness.gateway import modems
from tests.harness.ollama_standin import OllamaStandIn, Spec, delayed, text_reply, tool_reply
from tests.harness.process import (
    GatewayProcess,
    idle,
    key_digest,
    sent_keys,
    wait_until,
    write_config,
)

VICTIM = "+8801712345678"


def dispatch_call(location: str) -> Spec:
    return tool_reply(
        {
            "name": "dispatch_rescue_team",
            "arguments": {
                "location": location,
                "priority": "critical",
                "people_count": 3,
                "needs": "boat rescue",
            },
        }
    )


def test_kill9_during_model_turn_after_dispatch(tmp_path: Path, standin: OllamaStandIn) -> None:
    # Turn 1: the model calls the dispatch tool (executed and committed), then its text reply is
    # slow: the process dies while the turn is still in flight.
    standin.push_chat(dispatch_call("Ulipur mosque roof"), delayed(30, text_reply("too late")))
    gw = GatewayProcess(write_config(tmp_path, standin.url, dispatch={"approval": "auto"}))
    try:
        gw.start()
        gw.sms_in(VICTIM, "3 of us trapped on the Ulipur mosque roof, water rising")
        standin.wait_for_requests(2, endpoint="chat", timeout=20)
        assert gw.query("SELECT COUNT(*) FROM dispatches")[0][0] == 1
        assert gw.query("SELECT status FROM inbox") == [("processing",)]
        # the ack went out before, and is recorded sent: a kill between the modem's send and
        # that commit may send it again (the documented duplicate window), not what this tests
        wait_until(
            lambda: gw.query("SELECT COUNT(*) FROM outbox WHERE status='sent'")[0][0] >= 1,
            timeout=10,
        )
        gw.kill9()

        # After restart the turn is redone from the start: the model asks for the dispatch
        # again and this time answers.
        standin.push_chat(dispatch_call("Ulipur mosque roof"), text_reply("Boat coming. Stay up."))
        gw.start()
        assert "recovered after an unclean stop: 1 message(s) re-queued" in gw.wait_log(
            "recovered after an unclean stop"
        )
        wait_until(lambda: idle(gw), timeout=30)
        dispatches = gw.query("SELECT idem_key, status, team_id FROM dispatches")
        assert len(dispatches) == 1, dispatches
        assert dispatches[0][1] == "assigned" and dispatches[0][2] == "boat-1"
        teams = dict(gw.query("SELECT id, status FROM teams"))
        assert teams["boat-1"] == "busy" and teams["boat-2"] == "available"
        inbox = gw.query("SELECT id, status, attempts FROM inbox")
        assert len(inbox) == 1 and inbox[0][1] == "done"
        inbox_id = inbox[0][0]
        keys = sent_keys(gw)
        assert keys[key_digest(f"ack:{inbox_id}")] == 1
        assert keys[key_digest(f"reply:{inbox_id}")] == 1
        assert sum(keys.values()) == 2, keys
        texts = [m["text"] for m in gw.sent()]
        assert "Boat coming" in texts[1] and "too late" not in " ".join(texts)
        # the second turn's tool result told the model the dispatch already existed
        tool_results = [
            m["content"]
            for body in standin.chat_requests[2:]
            for m in body["messages"]
            if m["role"] == "tool"
        ]
        assert any('"already_requested": true' in r for r in tool_results), tool_results
        code, _ = gw.terminate()
        assert code == 0
    finally:
        gw.stop_quietly()


MIXED = [
    "{n} people on the roof at {place}, water rising",  # dispatch
    "when does the relief camp at {place} open?",
    "need drinking water for families at {place}",
    "my mother has fever at {place}, what should we do",
    "is the road to {place} flooded?",
]
PLACES = ["Ulipur", "Kurigram", "Chilmari", "Rajibpur", "Roumari", "Nageshwari"]


def obedient_model(body: dict[str, Any]) -> Spec:
    """Deterministic across restarts: the answer depends only on the request."""
    messages = body.get("messages") or []
    user = next((m["content"] for m in reversed(messages) if m.get("role") == "user"), "")
    if "roof" in user and not any(m.get("role") == "tool" for m in messages):
        return delayed(0.02, dispatch_call("the roof"))
    return delayed(0.05, text_reply("Noted. 1. Stay high. 2. Keep your phone on."))


def test_kill9_at_random_points_of_a_mixed_run(tmp_path: Path, standin: OllamaStandIn) -> None:
    rng = random.Random(20261128)
    standin.hook = obedient_model
    # auto_critical: roof messages (critical by triage) are dispatched without approval
    gw = GatewayProcess(
        write_config(
            tmp_path,
            standin.url,
            dispatch={"approval": "auto_critical"},
            queue={"retry_base_s": 0.5, "retry_max_s": 2, "lease_s": 600},
            sms={"modems": modems(tmp_path, 3)},  # 3 SIMs at 120 parts/min: the send rate
        )
    )
    messages: list[tuple[str, str]] = []
    for i in range(60):
        number = f"+88017{i % 40:08d}"  # 40 senders, some write twice
        text = MIXED[i % len(MIXED)].format(n=2 + i % 5, place=PLACES[i % len(PLACES)]) + f" #{i}"
        messages.append((number, text))
    kills = 4
    kill_after = sorted(rng.sample(range(8, 60), kills))
    try:
        gw.start()
        sent_so_far = 0
        for i, (number, text) in enumerate(messages):
            gw.sms_in(number, text, modem=int(number[-2:]) % 3)  # a sender keeps to one SIM
            if sent_so_far < kills and i == kill_after[sent_so_far]:
                # Start-up work (the protocol index) runs on threads after "ready": let it end,
                # so the kill lands while messages are processed and sent.
                # ": " so the banner's hint "until the log says 'protocol library ready'" is not it
                gw.wait_log(": protocol library ready", timeout=60)
                time.sleep(rng.uniform(0.2, 2.0))  # let work be in flight
                gw.kill9()
                sent_so_far += 1
                gw.start()
            else:
                time.sleep(0.03)
        wait_until(lambda: idle(gw), timeout=120, every=0.25)
        code, _ = gw.terminate()
        assert code == 0
    finally:
        gw.stop_quietly()

    assert gw.starts == kills + 1
    assert "recovered after an unclean stop" in gw.all_logs()
    inbox = gw.query("SELECT id, peer, text, status FROM inbox ORDER BY id")
    assert sorted(t for _, _, t, _ in inbox) == sorted(t for _, t in messages)  # none lost/twice
    assert {s for *_, s in inbox} == {"done"}
    out = gw.query("SELECT idem_key, status FROM outbox")
    assert {s for _, s in out} == {"sent"}
    keys = sent_keys(gw)
    digests = {key_digest(k): k for k, _ in out}
    assert set(keys) == set(digests), "every reply row sent, nothing sent without a row"
    repeats = {digests[d]: n for d, n in keys.items() if n > 1}
    # Only a kill between libGammu's accept and the 'sent' commit may repeat a send: at most one
    # message per kill (one SMS sender), and only if the kill landed in that window.
    assert len(repeats) <= kills and all(n == 2 for n in repeats.values()), repeats
    if repeats:
        print(f"at-least-once repeats observed after {kills} kills: {repeats}")
    replies = {k for k, _ in out if k.startswith(("reply:", "fallback:"))}
    answered = {int(k.split(":")[1]) for k in replies}
    assert answered == {i for i, *_ in inbox}, "each inbound got its own reply"
    dispatches = gw.query("SELECT incident_id, idem_key FROM dispatches")
    per_incident = Counter(i for i, _ in dispatches)
    assert all(n == 1 for n in per_incident.values()), dispatches
    roof_cases = gw.query("SELECT COUNT(DISTINCT incident_id) FROM inbox WHERE text LIKE '%roof%'")[
        0
    ][0]
    assert len(per_incident) == roof_cases
