"""Drill promises about Matrix victims' voice notes and photos: the model received each one, and
a photo's EXIF GPS became the case's exact location."""

from __future__ import annotations

from bot.drill.checks.evidence import Evidence, Result, short

GPS_TOLERANCE = 1e-4  # degrees (≈ 10 m): what the EXIF rationals and a float column keep


def media_to_model(ev: Evidence) -> Result:
    """Every voice note and photo reached the model as images in its request (observable only
    when the drill's stand-in plays the model)."""
    r = Result("media_to_model", "every voice note and photo reached the model")
    sent = [i for i in ev.journal.injected if i.media]
    if sent and not ev.journal.model_observed:
        r.notes.append("the model is a real Ollama: what it received is not observable")
        return r
    got = {(m.peer, m.kind) for m in ev.journal.model_media if m.parts > 0}
    for inj in sent:
        r.checked += 1
        if (inj.number, inj.media) not in got:
            r.add(
                inj.t,
                inj.number,
                f"{inj.media} {inj.event_id} never reached the model: {short(inj.text)!r}",
            )
    return r


def photo_located(ev: Evidence) -> Result:
    """A photo with EXIF GPS locates the sender's case exactly."""
    r = Result("photo_located", "a photo's GPS became its case's location")
    for inj in ev.journal.injected:
        if inj.media != "photo" or inj.lat is None or inj.lon is None:
            continue
        inc = ev.incident_of(inj.number)
        if inc is None:
            continue  # no case at all: nothing_lost / critical_alerted say so
        r.checked += 1
        lat, lon = inc.get("lat"), inc.get("lon")
        if (
            lat is None
            or lon is None
            or abs(lat - inj.lat) > GPS_TOLERANCE
            or abs(lon - inj.lon) > GPS_TOLERANCE
        ):
            r.add(
                inj.t,
                inc["case_code"],
                f"case at {lat},{lon}; the photo's GPS says {inj.lat},{inj.lon}",
            )
    return r
