"""Scenario drills: replay a disaster night against a real gateway and check its promises.

scenario (TOML format) → plan (who texts or DMs what, when) → runner (real gateway, real Synapse,
real dummy modems; staff.py and victims.py are the Matrix accounts, media.py encodes their voice
notes and photos) → journal + database snapshot → checks (the promises) → report."""
