"""`[board]`: the incident board's settings (bot/board), part of config/settings.py's schema."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from config.places import proxy_address, public_origin


class BoardSettings(BaseModel):
    """The incident board (bot/board): a web page served by the gateway for staff only."""

    model_config = ConfigDict(extra="forbid", frozen=True)  # as every section (settings.py)

    enabled: bool = False
    bind: str = "127.0.0.1"  # loopback only; a LAN address is an explicit, logged choice
    port: int = Field(8380, ge=1, le=65535)
    tiles: str = ""  # an offline basemap: a .pmtiles or .mbtiles file ("" = plain grid)
    outline: str = ""  # optional GeoJSON file of the district outline
    center_lat: float = Field(23.81, ge=-90, le=90)  # where the map opens without tiles
    center_lon: float = Field(90.41, ge=-180, le=180)
    zoom: int = Field(11, ge=0, le=22)
    session_hours: float = Field(12.0, gt=0, le=24 * 14)  # a shift, then log in again
    login_failures: int = Field(5, ge=1)  # failed logins per IP / per user per 15 min
    # The address browsers use when a reverse proxy (nginx, caddy; TLS there) stands in front:
    # the only origin actions are accepted from, the cookie's Secure flag, the banner's URL.
    # "" = browsers reach the board directly at bind:port. Forwarded headers are never read.
    public_url: str = ""
    # With public_url: the proxy's own address. Only requests from it have their X-Forwarded-For
    # read, for the failed-login limit per browser (else every browser is the proxy's address).
    trusted_proxy: str = ""

    @field_validator("public_url")
    @classmethod
    def _public_origin(cls, url: str) -> str:
        return public_origin(url) if url else url

    @field_validator("trusted_proxy")
    @classmethod
    def _proxy_address(cls, address: str) -> str:
        return proxy_address(address) if address else address

    @model_validator(mode="after")
    def _proxy_needs_public_url(self) -> BoardSettings:
        if self.trusted_proxy and not self.public_url:
            raise ValueError("trusted_proxy is for a board behind a reverse proxy: set public_url")
        return self

    @property
    def secure(self) -> bool:
        """Browsers reach the board over https (through a TLS-terminating proxy)."""
        return self.public_url.startswith("https://")
