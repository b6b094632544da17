"""bot/redact.py: the one masker for numbers and Matrix ids in log lines."""

from __future__ import annotations

import pytest

from bot.redact import mask_peer


@pytest.mark.parametrize(
    ("peer", "masked"),
    [
        ("+8801712345678", "+88017*****678"),
        ("+919812345678", "+91981****678"),
        ("@alice:example.org", "@al***:example.org"),
        ("@bo:example.org", "@bo:example.org"),  # nothing left to hide in a 2-letter name
        ("!room:example.org", "!room:example.org"),
        ("#coord:example.org", "#coord:example.org"),
        ("12345", "***45"),
        ("", ""),
    ],
)
def test_mask_peer(peer: str, masked: str) -> None:
    assert mask_peer(peer) == masked


@pytest.mark.parametrize("peer", ["1234567", "12345678", "+12345678"])
def test_mask_peer_never_shows_a_short_number_whole(peer: str) -> None:
    """7-9 character numbers (local numbers, short codes with a prefix) used to come back with
    the prefix and the last 3 digits overlapping, i.e. every digit visible."""
    masked = mask_peer(peer)
    assert len(masked) == len(peer)
    assert masked.endswith(peer[-3:])
    assert set(masked[:-3]) == {"*"}


@pytest.mark.parametrize("peer", ["+8801712345678", "01712345678", "+447700900123"])
def test_mask_peer_hides_the_subscriber_digits(peer: str) -> None:
    masked = mask_peer(peer)
    assert peer not in masked and peer[-7:] not in masked
    assert masked.endswith(peer[-3:])
