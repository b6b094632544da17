"""Scenario drills: replay a disaster night against a real gateway and check its promises.

scenario (TOML format) → plan (who texts what, when) → runner (real gateway, real Synapse, real
dummy modems) → journal + database snapshot → checks (the promises) → report."""
