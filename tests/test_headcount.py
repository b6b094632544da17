"""Head counts coordinators see before the model has read the message (0 = unknown)."""

from __future__ import annotations

import pytest

from bot.headcount import MAX_PEOPLE, people_count


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("4 people on the roof", 4),
        ("আমরা ৫ জন ছাদে", 5),
        ("पानी बढ़ रहा, 7 लोग फंसे", 7),
        ("ہم ۸ لوگ چھت پر", 8),
        ("پانی بڑھ رہا ہے، 6 لوگوں کو بچائیں", 6),  # oblique plural (drill templates)
        ("family of 6 stuck near the ghat", 6),
        ("we are 3 here", 3),
        ("5 of us on the roof, 2 children", 5),
        ("amra 5 jon chade atke achi", 5),
        ("five people trapped", 5),
        ("Water rising at ward 5", 0),
        ("call 01712345678", 0),
        ("boats leave at 6", 0),
        ("Char Bhadrasan people need boats", 0),
        ("we are safe", 0),
        ("99999 people", MAX_PEOPLE),
    ],
)
def test_people_count(text: str, count: int) -> None:
    assert people_count(text) == count
