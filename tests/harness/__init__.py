"""What the tests and benches share: the real components started for a test and the helpers
around them. Test modules import from here, never from each other.

- ``ollama_standin``: Ollama's HTTP API, scripted per test (also the drill's model, by path).
- ``synapse_server``: a real Synapse per session; users, clients, sync helpers.
- ``gammu_phone``: libGammu's dummy modem driven directly.
- ``gateway``: a whole gateway in-process (``running_gateway``) and its settings.
- ``process``: the gateway as a subprocess and its CLI (end-to-end, crash and ownership tests).
- ``matrix_room``: a coordination room on the test Synapse and helpers to talk through it.
- ``lanes``: Broadcasts + two dummy modems + the SMS outbox worker, without the gateway.
- ``netguard``: blocks every non-loopback connection (autouse in tests/conftest.py).
- ``drill_evidence``, ``library_samples``, ``media_samples``, ``golden_questions``,
  ``injection_corpus``: data the tests build their cases from.
"""
