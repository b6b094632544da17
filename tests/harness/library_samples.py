"""Small protocol documents (EN and BN, with front matter) and a writer that lays them out as a
library directory, for the ingest, search and prebuilt-index tests."""

from __future__ import annotations

from pathlib import Path

EN_SNAKE = """---
title: Snakebite first aid
topic: snakebite
lang: en
source: Test Red Cross
version: 2
sms: Snakebite - keep still, remove rings, go to hospital for antivenom.
reviewed_by: test team
---
# Snakebite first aid

Keep the bitten person calm and still. Carry them; do not let them walk.

Remove rings, bangles and tight clothes near the bite before the limb swells.

Do not cut the wound, suck the venom or tie a tight tourniquet. Go to a hospital that has
antivenom as fast as possible.
"""

EN_WATER = """---
title: Safe drinking water
topic: drinking-water
lang: en
source: Test WHO
version: 1
sms: Boil water for one minute or use a chlorine tablet before drinking.
---
# Safe drinking water

Floodwater makes wells and ponds dirty. Boil drinking water for at least one minute.

If you cannot boil it, add one chlorine tablet per the packet and wait thirty minutes.
"""

EN_BLEEDING = """---
title: Stop heavy bleeding
topic: bleeding
lang: en
source: Test IFRC
version: 1
sms: Press hard on the wound with a clean cloth for 10 minutes.
---
# Stop heavy bleeding

Press hard on the wound with a clean cloth and keep pressing for ten minutes.

If the cloth soaks through, put another on top and press harder.
"""

BN_SNAKE = """---
title: সাপে কামড়ের প্রাথমিক চিকিৎসা
topic: snakebite
lang: bn
source: পরীক্ষা রেড ক্রস
version: 1
sms: সাপে কামড়ালে রোগীকে স্থির রাখুন, আংটি খুলুন, দ্রুত হাসপাতালে নিন।
---
# সাপে কামড়ের প্রাথমিক চিকিৎসা

রোগীকে শান্ত ও স্থির রাখুন। তাকে হাঁটতে দেবেন না, বহন করে নিন।

কামড়ের জায়গা কাটবেন না, মুখ দিয়ে বিষ চুষবেন না। দ্রুত হাসপাতালে নিয়ে যান।
"""


def write_library(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    return root
