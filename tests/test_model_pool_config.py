"""``[[model.hosts]]``: the pool's config; the old ``[model] host`` is one server, one slot."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.settings import ConfigError, load_settings


def write(tmp: Path, text: str) -> Path:
    path = tmp / "lifeline.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_old_single_host_is_one_server_with_one_slot(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, '[model]\nhost = "http://10.0.0.5:11434"\n'), environ={})
    (only,) = s.model.pool
    assert (only.url, only.slots, only.label) == ("http://10.0.0.5:11434", 1, "10.0.0.5:11434")
    assert s.model.total_slots == 1


def test_hosts_table_array(tmp_path: Path) -> None:
    text = """
[model]
name = "gemma4:e4b"

[[model.hosts]]
name = "gpu1"
url = "http://127.0.0.1:11434"
slots = 4

[[model.hosts]]
url = "http://192.168.1.20:11434"
slots = 2
"""
    s = load_settings(write(tmp_path, text), environ={})
    assert [(h.label, h.slots) for h in s.model.pool] == [("gpu1", 4), ("192.168.1.20:11434", 2)]
    assert s.model.total_slots == 6
    assert s.model.host == "http://127.0.0.1:11434"  # the embedder's server: the first one


def test_host_and_hosts_together_is_a_clear_error(tmp_path: Path) -> None:
    text = '[model]\nhost = "http://a:11434"\n[[model.hosts]]\nurl = "http://b:11434"\n'
    with pytest.raises(ConfigError, match=r"either \[model\] host .* or \[\[model.hosts\]\]"):
        load_settings(write(tmp_path, text), environ={})


@pytest.mark.parametrize(
    ("host", "error"),
    [
        ('url = "http://b:11434"\nslot = 2', "slot"),  # unknown key, as everywhere
        ('url = "b:11434"', "must be a URL"),
        ('url = "http://b:11434"\nslots = 0', "slots"),
        ("slots = 2", "url"),
    ],
)
def test_bad_host_entries_are_refused(tmp_path: Path, host: str, error: str) -> None:
    with pytest.raises(ConfigError, match=error):
        load_settings(write(tmp_path, f"[[model.hosts]]\n{host}\n"), environ={})


def test_host_names_are_unique(tmp_path: Path) -> None:
    one = '[[model.hosts]]\nurl = "http://{}:1"\nname = "gpu"\n'
    text = one.format("a") + one.format("b")
    with pytest.raises(ConfigError, match="unique"):
        load_settings(write(tmp_path, text), environ={})
