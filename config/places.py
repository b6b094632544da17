"""Checked values of settings about places: a position on the map, the board's public address,
its reverse proxy's address.

Each raises ValueError with a message for the operator (config/report.py shows it as it is)."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BeforeValidator


def lat_lon(value: Any, example: str) -> Any:
    """``[latitude, longitude]`` in degrees, latitude first (GeoJSON's order is the reverse, the
    usual mix-up: a Bangladesh longitude of 90.4 as latitude is caught by the range check)."""
    form = f"expected [latitude, longitude] in degrees, latitude first, e.g. {example}"
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise ValueError(f"{form} (got {value!r})")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        raise ValueError(f"{form}; both must be numbers (got {value!r})")
    lat, lon = float(value[0]), float(value[1])
    if not -90.0 <= lat <= 90.0:
        raise ValueError(f"latitude {lat:g} is outside -90..90: {form}")
    if not -180.0 <= lon <= 180.0:
        raise ValueError(f"longitude {lon:g} is outside -180..180: {form}")
    return (lat, lon)


def _position(value: Any) -> Any:
    return lat_lon(value, "[25.71, 89.66]")


# A checked [latitude, longitude] setting (a team's base on the board's map).
Position = Annotated[tuple[float, float], BeforeValidator(_position)]


def public_origin(url: str) -> str:
    """``scheme://host[:port]`` as a browser's Origin header names it (lower case, default port
    dropped), from a URL with nothing after the host but an optional "/"."""
    example = "e.g. 'https://board.lan' or 'https://192.168.1.10:8443'"
    try:
        url = url.strip()
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"not a URL ({exc}); {example} (got {url!r})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in url):
        raise ValueError(
            f"must start with https:// or http:// and name a host, {example} (got {url!r})"
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment or "@" in parts.netloc:
        raise ValueError(
            f"only the scheme and host (and port) the browser uses, no path, query or user: "
            f"the board is served at the root of its address; {example} (got {url!r})"
        )
    host = parts.hostname.lower()
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    default = {"http": 80, "https": 443}[scheme]
    return f"{scheme}://{host}" + (f":{port}" if port and port != default else "")


def proxy_address(address: str) -> str:
    """The reverse proxy's IP address as the board sees it (the TCP peer), e.g. 127.0.0.1."""
    try:
        return str(ipaddress.ip_address(address.strip()))
    except ValueError:
        raise ValueError(
            f"the reverse proxy's IP address as the board sees it, e.g. '127.0.0.1' when it runs "
            f"on this machine (got {address!r}); a host name is not accepted"
        ) from None
