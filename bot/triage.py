"""Deterministic multilingual triage: priority from the text alone, no model.

It runs before the model so that the auto-ack and the queue lane never wait for it, and so that a
life threat is escalated even when the model is down. It errs towards urgency: a false CRITICAL
costs a responder a glance, a missed one can cost a life.

Levels
------
* CRITICAL — immediate threat to life: drowning / swept away, trapped, unconscious, not
  breathing, bleeding, snakebite, electric shock or lightning, labour, fire, collapse, SOS pleas
  ("save us", "bachao"), water at chest/neck level, seizures / heart attack; or a combination such
  as water rising + (roof, plea, child, elderly, pregnant, injured…), snake + bite, child or
  pregnant woman + danger, roof + plea.
* HIGH — injured, pain, sick (fever, diarrhoea…), elderly / disabled, pregnant, stranded or cut
  off, on a roof or in a tree, water rising, no food or water, a snake, danger, a plea for help.
* MEDIUM — needs supplies, shelter or evacuation questions, missing-person information; also any
  message we cannot classify that is not a question (unknown is not safe).
* LOW — thanks, "we are safe", status enquiries, general questions, keyword commands.

Matching: terminal escape sequences are dropped, text is NFC-normalised, case-folded, stripped of
invisible characters, apostrophes, Indic nukta / chandrabindu (and Devanagari anusvara), Arabic
diacritics, and variant Arabic letters are unified (ي→ی, ك→ک, ه→ہ); runs of a repeated letter
collapse to one ("helppp" → "help", "paani" → "pani"). Vocabulary goes through the same
normalisation, so both sides agree. Terms match on word boundaries (for every script); a trailing
``*`` makes a term a prefix (stems such as "drown*" or "ডুবছ*"); `` ~ `` in a term allows up to
three words in between ("pani ~ barh*" matches "pani bahut tezi se barh raha"). Negation is not
modelled on purpose ("no one is injured" stays HIGH).

Symbols: 🆘 and Morse SOS ("...---...") are CRITICAL; "SOS" spelled out ("S.O.S", "s o s") is the
word. 🚨 ⚠ 🚑 are an alarm (HIGH) and 🌊 is water rising (HIGH); with a scene — 🏠 🏚 🏊 🛟 🔥,
a distress face 😭 😱 😰 … or a plea 🙏 — they make a life threat ("🌊🏠😭🙏", "⚠️🏠", "🚨🌊").
🙏 or 👍 alone stay LOW; a message of only distress or scene symbols is unclassified (MEDIUM).

SMS keyword commands
--------------------
A message that consists of a keyword (case-insensitive, surrounding punctuation ignored,
"please" tolerated) is a command. Only JOIN and STATUS take an argument.

* JOIN <area> — join, subscribe; যোগ, যোগ দিন, যুক্ত করুন; जुड़ें, जोड़ें, शामिल; شامل,
  شامل کریں; jog, jog din, judo, jodo, shamil.
* STOP — stop, unsubscribe, cancel, quit; বন্ধ, বন্ধ করুন, থামুন, থামো; रोको, बंद, बंद करो;
  بند, بند کرو, روکو; bondho, band, bandh, roko, ruko, thamo.
* STOP also with opt-out filler: "STOP ALERTS", "stop sms", "unsubscribe me", "STOP LF-4821",
  "alert band karo".
* HELP (the menu) — info, menu, keywords, "?"; তথ্য, মেনু; जानकारी, मेनू; معلومات, مینو.
  "help", "madad", "সাহায্য", "मदद", "مدد" are NOT the menu: on a disaster line they are a cry for
  help (a HIGH plea that opens a case and asks where they are).
* STATUS [<case code>] — status, update, case; অবস্থা, স্ট্যাটাস; स्थिति, स्टेटस, हाल; حالت,
  صورتحال, اسٹیٹس; obostha, sthiti, halat. Any other argument makes it a report ("update: SOS").

A message with a critical or high signal is never a command ("join us we are trapped on the roof"),
and a JOIN area is at most MAX_AREA_WORDS words.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from bot.lang import detect_script_lang
from bot.models import Priority
from bot.textclean import drop_sequences

__all__ = ["Keyword", "Triage", "normalize", "parse_keyword", "triage"]


class Keyword(StrEnum):
    JOIN = "join"
    STOP = "stop"
    HELP = "help"
    STATUS = "status"


@dataclass(frozen=True, slots=True)
class Triage:
    priority: Priority
    lang: str  # "bn" | "hi" | "ur" | "en" (script-based; romanised counts as "en")
    life_threat: bool
    reasons: tuple[str, ...]  # matched signals, then combinations such as "water_rising+roof"
    keyword: Keyword | None = None
    argument: str = ""  # JOIN area or STATUS case code, as the sender wrote it


# --- normalisation ----------------------------------------------------------------------------

_STRIP_CHARS = dict.fromkeys(
    map(
        ord,
        "'`´‘’ʼ"  # apostrophes: "can't" == "cant"
        "\u093c\u0901\u0902"  # Devanagari nukta, chandrabindu, anusvara (often omitted)
        "\u09bc\u0981"  # Bengali nukta, chandrabindu
        "\u0640\u0670",  # Arabic tatweel, superscript alef
    )
)
_STRIP_CHARS.update(dict.fromkeys(range(0x064B, 0x0660)))  # Arabic harakat
_STRIP_CHARS.update(dict.fromkeys(range(0xFE00, 0xFE10)))  # variation selectors ("❤️" is a symbol)
_MAP_CHARS = str.maketrans(
    {
        "\u064a": "\u06cc",  # Arabic yeh → Farsi/Urdu yeh
        "\u0649": "\u06cc",  # alef maksura → yeh
        "\u0643": "\u06a9",  # Arabic kaf → keheh
        "\u0647": "\u06c1",  # heh → heh goal (Urdu)
        "\u0629": "\u06c1",  # teh marbuta → heh goal
        "\u0623": "\u0627",  # alef with hamza above → alef
        "\u0625": "\u0627",  # alef with hamza below → alef
    }
)
_REPEAT = re.compile(r"([^\d\s])\1+")
_SPACE = re.compile(r"\s+")


def normalize(text: str) -> str:
    """The matching form of a text (see module docstring); stable and idempotent."""
    text = unicodedata.normalize("NFC", drop_sequences(text, " ")).casefold()
    text = "".join(
        " " if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch
        for ch in text
        if unicodedata.category(ch) not in ("Cf", "Cs")
    )
    text = text.translate(_STRIP_CHARS).translate(_MAP_CHARS)
    # Native digits → ASCII, so "৩ দিন" and "3 din" read alike.
    text = "".join(str(unicodedata.decimal(ch)) if ch.isdecimal() else ch for ch in text)
    text = _REPEAT.sub(r"\1", text)
    return _SPACE.sub(" ", text).strip()


# --- vocabulary -------------------------------------------------------------------------------

CRITICAL_SIGNALS: dict[str, tuple[str, ...]] = {
    "drowning": (
        "drown*", "swept away", "washed away", "carried away", "going under", "sinking", "capsiz*",
        "boat overturned", "boat turned over", "dube*", "dubch*", "dubce*", "dubt*", "dubne",
        "dub rah*", "dub gay*", "dub ja*", "dob rah*", "dob gay*", "dob ja*", "dobne", "dobe",
        "dobte", "beh gay*", "bah gay*", "beh rah*", "bah rah*", "bhese ja*", "bhese ge*",
        "bese ja*", "bhasiye", "tolie ja*", "toliye ja*", "nav palat*", "nao palat*",
        "kashti ulat*",
        "ডুব*", "ভেসে যাচ্ছ*", "ভেসে গেছ*", "ভেসে গেল", "ভাসিয়ে নিয়ে*", "তলিয়ে যাচ্ছ*",
        "डूब*", "बह गय*", "बह रह*", "बह जा*", "नाव पलट*",
        "ڈوب*", "بہہ گی*", "بہہ رہ*", "بہہ جا*", "بہ گی*", "کشتی الٹ*",
    ),
    "trapped": (
        "trap*", "cant get out", "cannot get out", "can not get out", "no way out", "cant escape",
        "cannot escape", "stuck inside", "pinned under", "phans*", "phanse", "phase hue",
        "phase hu", "phas gay*", "phas ge", "fas gay*", "fanse", "fans gay*", "fase hue",
        "fase hai", "phase hai", "phasa hu*", "atka*", "atke*", "atkiye", "atki", "atak gay*",
        "ber hote parchi na", "nikal nahi pa*", "nikal nahi sak*", "nikal nahin pa*",
        "আটকা*", "আটকে*", "আটকিয়ে", "বের হতে পারছি না", "বের হতে পারছিনা",
        "फंसे", "फंसा", "फंसी", "फंस गय*", "फंस चुक*", "फंसे हुए", "फसे", "निकल नहीं पा*",
        "बाहर नहीं निकल*",
        "پھنس*", "نکل نہیں پا*", "باہر نہیں نکل*",
    ),
    "unconscious": (
        "unconscious*", "passed out", "fainted", "not waking", "wont wake", "will not wake",
        "not responding", "unresponsive", "not moving", "behosh*", "behos*", "behush", "ogyan",
        "ojnan", "ojgan", "agyan", "ogyaan", "gyan nei", "gyan nai", "hosh nahi", "hosh nai",
        "hosh nahin", "hush nai", "hush nei", "hosh me nahi", "not talking", "not speaking",
        "অজ্ঞান", "জ্ঞান নেই", "জ্ঞান নাই", "জ্ঞান হারিয়ে*", "হুঁশ নেই", "সাড়া দিচ্ছে না",
        "बेहोश*", "होश नहीं", "होश में नहीं", "जवाब नहीं दे रह*", "हिल नहीं रह*",
        "بے ہوش*", "بیہوش*", "بےہوش*", "ہوش نہیں", "ہوش میں نہیں",
    ),
    "not_breathing": (
        "not breathing", "cant breathe", "cant breath", "cannot breathe", "cannot breath",
        "can not breathe", "stopped breathing", "no pulse", "no heartbeat", "trouble breathing",
        "difficulty breathing", "hard to breathe", "choking", "saans nahi", "sans nahi",
        "sas nahi", "saans nai", "sans nai", "saans band", "sans band", "saans nahin",
        "shash nic*", "shas nic*", "swas nic*", "shash nite par*", "shas nite par*", "shwash bon*",
        "shash bon*", "dom bondho", "dam ghut*", "shash koshto", "shas kosto", "shash kosto",
        "শ্বাস নিচ্ছে না", "শ্বাস নিতে পার*", "শ্বাস বন্ধ", "শ্বাসকষ্ট", "শ্বাস নেই",
        "নিঃশ্বাস নিচ্ছে না", "নিশ্বাস নিচ্ছে না", "নিঃশ্বাস নেই", "দম বন্ধ",
        "सांस नहीं", "सांस नही", "सांस बंद", "सांस लेने में*", "सांस रुक*", "दम घुट*",
        "سانس نہیں", "سانس بند", "سانس لینے میں*", "سانس رک*", "دم گھٹ*",
    ),
    "bleeding": (
        "bleed*", "blood*", "khoon", "khun", "rokto", "rakt", "lahu", "lahoo",
        "রক্ত*",
        "खून*", "रक्त*", "लहू",
        "خون*", "لہو",
    ),
    "snakebite": (
        "snakebite", "snake bite*", "snake bit*", "bitten by a snake", "bitten by snake",
        "bit by a snake", "bit by snake", "snake ~ bit*", "cobra", "sanp ne kat*", "saap ne kat*",
        "sap ne kat*", "saap kat*", "sanp kat*", "sap kat*", "snake ne kat*", "sape ket*",
        "sape kat*", "shape ket*", "sape kamr*", "shap e ket*", "sap e ket*", "saap ~ kat*",
        "sanp ~ kat*", "saanp ~ kat*", "saap ~ das*", "sanp ~ das*", "sap ~ ket*", "shap ~ ket*",
        "sap ~ kamr*", "shap ~ kamr*",
        "সাপে কেটে*", "সাপে কাট*", "সাপে কামড়*", "সাপের কামড়*", "সাপ ~ কেটে*", "সাপ ~ কামড়*",
        "সর্পদংশন", "সাপে দংশন*",
        "सांप ने काट*", "साँप ने काट*", "सांप ~ काट*", "सांप ~ डस*", "सर्पदंश", "नाग ~ काट*",
        "سانپ نے کاٹ*", "سانپ ~ کاٹ*", "سانپ ~ ڈس*",
    ),
    "electric_shock": (
        "electric shock*", "electrocut*", "live wire*", "got a shock", "got shock", "shocked by",
        "current shock", "wire* in the water", "wire* in water", "current in the water",
        "lightning strike", "struck by lightning", "hit by lightning", "current lag*",
        "karent leg*", "karent lag*", "current leg*", "karant lag*", "bijli ka jhatka",
        "bijli ka current", "shock lag*", "shock kha*", "bijli gir*", "bojropat*", "bajrapat*",
        "bajropat*",
        "বিদ্যুৎস্পৃষ্ট*", "কারেন্ট লেগ*", "কারেন্টে*", "কারেন্টের শক", "কারেন্ট শক",
        "বিদ্যুতের তার*", "শক খেয়*", "বজ্রপাত*",
        "करंट लग*", "करंट से", "बिजली का झटका", "बिजली का करंट", "करंट का झटका", "बिजली के तार*",
        "बिजली गिर*", "झटका लग*",
        "کرنٹ لگ*", "کرنٹ سے", "بجلی کا جھٹکا", "بجلی کا کرنٹ", "بجلی گر*", "بجلی کے تار*",
    ),
    "labour": (
        "in labour", "in labor", "labour pain*", "labor pain*", "contractions", "giving birth",
        "water broke", "waters broke", "water has broken", "delivery pain*", "about to deliver",
        "about to give birth", "baby is coming", "going into labour", "going into labor",
        "prosob*", "prosab*", "prashob*", "prasav*", "prasab*", "delivery ~ dard",
        "baccha hone wal*", "bachcha hone wal*", "bacha hobe", "dard shuru", "betha uthe*",
        "batha uthe*", "byatha uthe*", "dard uth*",
        "প্রসব*", "ডেলিভারি ব্যথা", "বাচ্চা হবে", "ব্যথা উঠেছে", "লেবার পেইন",
        "प्रसव*", "डिलीवरी ~ दर्द", "बच्चा होने वा*", "दर्द शुरू", "दर्द उठ*", "लेबर पेन",
        "درد زہ", "زچگی*", "ڈلیوری ~ درد", "بچہ ہونے وال*", "درد شروع", "لیبر پین",
    ),
    "fire": (
        "fire", "on fire", "burning house", "house burning", "house is burning", "aag lag*",
        "ag lagi", "ag laga", "agun*", "agoon", "aagun",
        "আগুন*",
        "आग", "आग लग*",
        "آگ",
    ),
    "collapse": (
        "collaps*", "house fell", "roof fell", "wall fell", "house fall*", "building fell",
        "caved in", "buried", "under rubble", "under the rubble", "under debris", "landslide*",
        "mudslide*", "ghar gir*", "makan gir*", "deewar gir*", "diwar gir*", "chat gir*",
        "ghor bheng*", "bari bheng*", "deyal bheng*", "dhose*", "chapa por*", "dab gay*", "malbe",
        "ভেঙে পড়*", "ধসে*", "ধস", "চাপা পড়*", "ঘর ভেঙে*", "বাড়ি ভেঙে*", "দেয়াল ভেঙে*",
        "ভূমিধস*", "পাহাড় ধস*",
        "ढह*", "मकान गिर*", "घर गिर*", "दीवार गिर*", "छत गिर*", "मलबे*", "दब गय*", "भूस्खलन",
        "مکان گر*", "گھر گر*", "دیوار گر*", "چھت گر*", "ملبے*", "دب گی*", "لینڈ سلائیڈ",
    ),
    "sos": (
        "sos", "s o s", "mayday", "save us", "save me", "save my*", "save our*", "rescue us",
        "rescue me", "rescue my*", "need rescue", "need rescuing", "please rescue", "we will die",
        "well die",
        "we are dying", "i am dying", "dying", "going to die", "gonna die", "life in danger",
        "lives in danger", "life threatening", "bachao*", "bachaw", "bachau", "bacha lo",
        "bachalo", "bachaiye", "bachaie", "bachain", "bachaen", "banchao", "bachan", "bacao",
        "bchao", "hame bacha*", "hamein bacha*", "hamen bacha*", "amader bacha*", "amake bacha*",
        "mar jayenge", "mar jaenge", "mar jayege", "mar jaega", "mar jaenge", "mar rahe",
        "more jabo", "mora jabo", "mara jabo", "mara jacche", "more jacchi", "udhar koro",
        "uddhar kor*", "rokkha koro", "rokha koro", "jaan khatre", "jan khatre",
        "বাঁচাও*", "বাঁচান*", "বাঁচাইয়*", "রক্ষা করুন", "রক্ষা করো", "উদ্ধার কর*", "মরে যাব*",
        "মারা যাব*", "মারা যাচ্ছ*", "মরে যাচ্ছ*",
        "बचाओ", "बचाइए", "बचाइये", "बचा लो", "बचालो", "बचाएं", "बचाये", "बचा ~ लो", "मर जाएंगे",
        "मर जायेंगे", "मर जाएगा", "मर जायेगा", "मर जाएगी", "मर रह*", "जान खतरे में", "हमें बचा*",
        "بچاؤ", "بچاو", "بچا لو", "بچالو", "بچائیں", "بچائیے", "مر جائیں گے", "مر جائے گا",
        "مر رہ*", "جان خطرے میں", "ہمیں بچا*",
    ),
    "medical_emergency": (
        "heart attack", "cardiac arrest", "seizure*", "convuls*", "having fits", "stroke",
        "poison*", "anaphyla*", "dil ka dora", "dil ka daura", "daura pad*", "dora par*", "mirgi",
        "khichuni", "zeher", "zahar", "bish khe*",
        "হার্ট অ্যাটাক", "খিঁচুনি", "স্ট্রোক", "বিষ খে*",
        "दिल का दौरा", "हार्ट अटैक", "दौरा पड़*", "मिर्गी", "जहर",
        "دل کا دورہ", "ہارٹ اٹیک", "دورہ پڑ*", "مرگی", "زہر",
    ),
    "deep_water": (
        "neck deep", "chest deep", "up to our neck*", "up to my neck", "up to the neck",
        "neck level", "chest level", "up to our chest*", "up to my chest", "water ~ neck*",
        "water ~ chest*", "over our heads", "gale tak", "gala tak", "chati tak", "chhati tak",
        "seene tak", "sine tak", "gardan tak", "gola porjon*", "gola shoman", "gola soman",
        "buk porjon*", "buk shoman", "buk soman", "gola pani", "buk pani",
        "গলা পর্যন্ত", "বুক পর্যন্ত", "গলা সমান", "বুক সমান", "গলা পানি", "বুক পানি",
        "गले तक", "छाती तक", "सीने तक", "गर्दन तक",
        "گلے تک", "سینے تک", "گردن تک", "چھاتی تک",
    ),
}  # fmt: skip

HIGH_SIGNALS: dict[str, tuple[str, ...]] = {
    "water_rising": (
        "water* ~ rising", "water* ~ rise*", "rising water*", "water ~ coming in*",
        "water ~ coming into", "water ~ entering", "water ~ increasing", "water ~ going up",
        "water ~ getting higher", "water level* ~ up", "flood* ~ rising", "house is flooding",
        "flooding fast", "pani ~ barh*", "pani ~ badh*", "pani ~ barc*", "pani ~ bart*",
        "pani ~ bere*", "pani ~ bad rah*", "pani ~ bad gay*", "pani ~ char rah*", "pani ~ charh*",
        "pani ~ chadh*", "pani ~ ghus*", "pani ~ dhuk*", "pani ~ uth*", "pani ~ bhar rah*",
        "jol ~ barc*", "jol ~ bart*", "jol ~ dhuk*", "jol ~ bere*", "water ~ coming*",
        "water ~ entered", "water ~ came in*", "water ~ inside*", "water ~ still rising",
        "dam ~ broke*", "dam ~ burst*", "embankment ~ broke*", "embankment ~ breach*",
        "bad bheng*", "bandh tut*",
        "পানি ~ বাড়ছ*", "পানি ~ বাড়তে*", "পানি ~ বেড়ে*", "জল ~ বাড়ছ*", "জল ~ বেড়ে*",
        "পানি ~ উঠছ*", "পানি ~ উঠে*", "পানি ~ ঢুকছ*", "পানি ~ ঢুকে*", "জল ~ ঢুক*", "জল ~ উঠছ*",
        "বাঁধ ভেঙ*", "পানি ~ ঢুক*", "পানি ~ ভিতরে*",
        "पानी ~ बढ़*", "पानी ~ चढ़*", "पानी ~ भर रह*", "पानी ~ घुस*", "पानी ~ आ रहा",
        "जलस्तर ~ बढ़*", "बांध टूट*", "पानी ~ अंदर*",
        "پانی ~ بڑھ*", "پانی ~ چڑھ*", "پانی ~ گھس*", "پانی ~ اندر آ*", "پانی ~ بھر رہ*",
        "بند ٹوٹ*", "پانی ~ داخل*",
    ),
    "roof": (
        "roof*", "rooftop*", "on top of the house", "on top of our house", "in a tree",
        "on a tree", "up a tree", "in the tree", "on the tree", "treetop*", "attic", "chat par",
        "chat pe", "chat pa", "chat ke upar", "chat upar", "chade", "chader", "chaad",
        "chaler upor", "gache", "gacher upor", "ped par", "ped pe", "darakht par", "darakht pe",
        "ছাদ*", "চালে", "চালের উপর", "টিনের চাল*", "গাছে", "গাছের উপর", "ঘরের চাল*",
        "छत", "छतों", "छत पर", "पेड़ पर", "पेड़ पे",
        "چھت", "چھتوں", "درخت پر",
    ),
    "stranded": (
        "strand*", "stuck", "cut off", "isolated", "marooned", "surrounded by water",
        "no way to leave", "cant leave", "cannot leave", "no boat", "pani bondi*", "panibondi*",
        "pani bandi*", "ghire hue", "ghira hua", "ber howar upay nei", "jawar upay nei",
        "rasta nahi", "rasta band",
        "পানিবন্দি*", "পানিবন্দী*", "বিচ্ছিন্ন*", "যাওয়ার উপায় নেই", "বের হওয়ার উপায় নেই",
        "कट गय*", "पानी से घिर*", "घिरे हुए", "निकलने का रास्ता नहीं",
        "کٹ گی*", "پانی میں گھر*", "گھرے ہوئے", "نکلنے کا راستہ نہیں",
    ),
    "boat_request": (
        "send a boat", "send boat", "need a boat", "need boat", "boat please", "nouka pathan",
        "nauka pathan", "nouka lagbe", "nauka lagbe", "nao bhej*", "naav bhej*", "nav bhej*",
        "kashti bhej*", "boat bhej*", "boat pathan", "boat lagbe", "boat chahiye", "nav chahiye",
        "naav chahiye",
        "নৌকা পাঠান", "নৌকা লাগবে", "নৌকা দরকার", "নৌকা চাই",
        "नाव भेज*", "नाव चाहिए", "नाव की जरूरत",
        "کشتی بھیج*", "کشتی چاہیے", "کشتی چاہئے",
    ),
    "elderly": (
        "elderly", "old man", "old woman", "old lady", "old people", "old person", "old mother",
        "old father", "old parents", "grandma*", "grandpa*", "grandmother*", "grandfather*",
        "disabled", "handicapped", "wheelchair", "bedridden", "bed ridden", "paralys*", "blind",
        "buzurg", "bujurg", "budhe", "budha", "budhi", "boyosko", "boyoshko", "briddho", "briddo",
        "buro", "buri", "dadi", "nani", "dadu", "nanu", "protibondhi", "viklang",
        "বৃদ্ধ*", "বয়স্ক*", "বুড়ো", "বুড়ি", "দাদি", "নানি", "দাদু", "নানু", "প্রতিবন্ধী",
        "পঙ্গু",
        "बुज़ुर्ग*", "बूढ़े", "बूढ़ा", "बूढ़ी", "दादी", "नानी", "विकलांग", "अपाहिज", "लकवा",
        "بزرگ*", "بوڑھے", "بوڑھا", "بوڑھی", "دادی", "نانی", "معذور", "فالج",
    ),
    "pregnant": (
        "pregnant", "pregnancy", "expecting a baby", "garbhvati", "garbhavati", "gorbhoboti",
        "gorvoboti", "pregnent", "pet se", "ummeed se", "umeed se",
        "গর্ভবতী", "অন্তঃসত্ত্বা", "প্রেগন্যান্ট", "পোয়াতি",
        "गर्भवती", "प्रेग्नेंट", "पेट से",
        "حاملہ", "امید سے", "پیٹ سے",
    ),
    "injured": (
        "injur*", "hurt", "wound*", "fractur*", "broken leg", "broken arm", "broken bone*",
        "broke his*", "broke her*", "broke my*", "deep cut", "cut badly", "burn*", "accident",
        "fell from", "fell down", "ghayal", "ghayel", "chot", "chot lag*", "chot ai", "chot aa*",
        "zakhmi", "jakhmi", "zakham", "zakhm", "ahoto", "ahot", "aghat", "haddi tut*",
        "har bheng*", "pa bheng*", "hat bheng*", "jal gay*", "pure gec*", "pore gec*", "kete gec*",
        "head injury", "hit his head", "hit her head", "hit my head",
        "আহত", "আঘাত*", "জখম", "ক্ষত*", "হাত ভেঙ*", "পা ভেঙ*", "হাড় ভেঙ*", "পুড়ে*", "দুর্ঘটনা*",
        "পড়ে গেছ*", "কেটে গেছ*",
        "घायल", "चोट*", "ज़ख्म*", "ज़ख्मी", "हड्डी टूट*", "पैर टूट*", "हाथ टूट*", "जल गय*",
        "दुर्घटना", "गिर गय*",
        "زخمی", "زخم*", "چوٹ*", "ہڈی ٹوٹ*", "ٹانگ ٹوٹ*", "بازو ٹوٹ*", "جل گی*", "حادثہ",
    ),
    "pain": (
        "pain*", "hurts", "aching", "ache", "dard", "betha", "batha", "byatha", "bytha",
        "jontrona",
        "ব্যথা", "বেদনা", "যন্ত্রণা",
        "दर्द", "पीड़ा",
        "درد", "تکلیف",
    ),
    "sick": (
        "sick", "fell ill", "is ill", "are ill", "very ill", "seriously ill", "illness", "fever*",
        "vomit*", "diarrh*", "diarea", "diarhea", "loose motion*", "cholera", "dehydrat*",
        "infection", "infected", "rash", "cough*", "typhoid", "malaria", "dengue", "unwell",
        "not well", "dizzy", "bimar*", "bemar*", "bukhar", "jor", "jwor", "jvor", "dast", "ulti",
        "patla paikhana", "patla paykhana", "paikhana", "bomi", "haiza", "heza", "haija",
        "osustho", "asustho", "osusto", "oshustho", "tabiyat ~ kharab", "tabiat ~ kharab",
        "tabiyat thik nahi", "khansi", "kashi", "dengu",
        "অসুস্থ", "জ্বর", "ডায়রিয়া", "পাতলা পায়খানা", "বমি", "কলেরা", "পানিশূন্যতা", "কাশি",
        "সংক্রমণ", "ডেঙ্গু", "টাইফয়েড", "অসুখ",
        "बीमार*", "बुखार", "दस्त", "उल्टी", "उलटी", "हैजा", "डायरिया", "खांसी", "संक्रमण",
        "तबीयत ~ खराब", "तबियत ~ खराब", "डेंगू", "मलेरिया",
        "بیمار*", "بخار", "اسہال", "دست", "الٹی", "قے", "ہیضہ", "کھانسی", "طبیعت ~ خراب", "ڈینگی",
        "ملیریا",
    ),
    "no_food_water": (
        "no food", "no water", "no drinking water", "no clean water", "nothing to eat",
        "nothing to drink", "not eaten", "havent eaten", "have not eaten", "didnt eat", "starv*",
        "hungry", "without food", "without water", "no milk", "ran out of food", "out of food",
        "out of water", "food finished", "food is finished", "khana nahi", "khana nai",
        "khana nahin", "khana khatam", "bhukhe", "bhuke", "bhookh", "bhukh*", "bhuka", "bhooka",
        "pani nahi", "pani nai", "pani nei", "khabar nei", "khabar nai", "khaddo nei", "na kheye",
        "na khaye", "kuch nahi khaya", "kichu khaini", "khaini", "khete paini", "onahar*", "khida",
        "khide", "upos",
        "খাবার নেই", "খাবার নাই", "খাদ্য নেই", "খাওয়ার কিছু নেই", "না খেয়ে*", "খাবার পানি নেই",
        "পানি নেই", "পানি নাই", "খাবার শেষ", "অনাহার*", "ক্ষুধা*", "উপোস", "খাইনি", "খেতে পাইনি",
        "खाना नहीं", "खाना नही", "भूखे", "भूखा", "भूखी", "भूख*", "पानी नहीं", "पीने का पानी नहीं",
        "कुछ नहीं खाया", "खाना खत्म", "भोजन नहीं", "खाने को कुछ नहीं",
        "کھانا نہیں", "بھوکے", "بھوکا", "بھوک*", "پانی نہیں", "پینے کا پانی نہیں",
        "کچھ نہیں کھایا", "کھانا ختم", "کھانے کو کچھ نہیں",
    ),
    "plea": (
        "help", "help us", "help me", "please help", "urgent*", "emergency", "asap", "hurry",
        "madad*", "modot", "modod", "sahayata", "sahajjo", "shahajjo", "shahajo", "sahajo",
        "sahajya", "jaldi", "turant", "taratari", "druto", "joruri", "jaruri", "hlp",
        "anyone there", "anybody there", "koi hai", "koi sun rah*", "keu achen*", "keu ache",
        "সাহায্য*", "জরুরি", "জরুরী", "তাড়াতাড়ি", "দ্রুত", "হেল্প", "সহায়তা", "কেউ আছেন*",
        "मदद*", "सहायता", "जल्दी", "तुरंत", "आपातकाल", "हेल्प", "बचाव", "कोई है",
        "مدد*", "جلدی", "فوری*", "ہنگامی", "ہیلپ", "کوئی ہے",
    ),
    "danger": (
        "danger*", "not safe", "unsafe", "scared", "afraid", "terrified", "frightened", "panic*",
        "bipod*", "bipad*", "khatre*", "khatra", "khatara", "dar lag*", "bhoy lag*", "voy lag*",
        "bhoy pac*", "nirapod na", "surakshit nahi", "mehfooz nahi", "dar rah*",
        "বিপদ*", "ভয় পাচ্ছি", "ভয়ে", "নিরাপদ না", "নিরাপদ নই",
        "खतरे*", "खतरा", "डर लग*", "सुरक्षित नहीं", "डर रह*",
        "خطرے*", "خطرہ", "ڈر لگ*", "محفوظ نہیں", "ڈر رہ*",
    ),
    "snake": (
        "snake*", "saap", "sanp", "saanp", "shap", "shaap",
        "সাপ", "সাপে", "সাপের",
        "सांप", "साँप", "सांपों",
        "سانپ*",
    ),
}  # fmt: skip

MEDIUM_SIGNALS: dict[str, tuple[str, ...]] = {
    "missing": (
        "missing", "cant find", "cannot find", "lost", "separated", "looking for", "searching for",
        "whereabouts", "no news of", "no contact with", "lapata", "laapata", "gum ho*", "gumshuda",
        "kho gay*", "nikhoj", "nikhuj", "hariye ge*", "khuje pac*", "khuje paichi na", "khoj nei",
        "nahi mil rah*", "bichhad gay*", "dhundh rah*",
        "নিখোঁজ", "হারিয়ে গেছ*", "খুঁজে পাচ্ছি না", "খোঁজ পাচ্ছি না", "খোঁজ নেই", "যোগাযোগ নেই",
        "लापता", "गुम*", "नहीं मिल रह*", "खो गय*", "बिछड़ गय*", "ढूंढ रह*",
        "لاپتہ", "گمشدہ", "گم*", "نہیں مل رہ*", "کھو گی*", "بچھڑ گی*", "تلاش",
    ),
    "supplies": (
        "food", "drinking water", "clean water", "need water", "medicine*", "medical", "ors",
        "saline", "tarp*", "tent*", "blanket*", "cloth*", "milk", "baby food", "sanitary",
        "ration*", "relief", "supplies", "dry food", "mosquito net*", "khana", "khaddo", "tran",
        "rashan", "dawa*", "dawai", "osudh", "oshudh", "oushodh", "kombol", "kambal", "kapra",
        "kapda", "kapor", "dudh", "doodh", "rahat", "imdad", "chahiye", "lagbe", "dorkar",
        "proyojon", "zarurat", "jarurat", "tirpal", "tripol",
        "খাবার", "খাদ্য", "ত্রাণ", "ওষুধ", "ঔষধ", "কম্বল", "কাপড়*", "শুকনো খাবার", "স্যালাইন",
        "খাবার পানি", "বিশুদ্ধ পানি", "দুধ", "তাঁবু", "ত্রিপল", "মশারি", "দরকার", "লাগবে",
        "প্রয়োজন",
        "खाना", "भोजन", "राशन", "दवा*", "दवाई", "कंबल", "कपड़े", "दूध", "राहत", "पीने का पानी",
        "तिरपाल", "तंबू", "चाहिए", "जरूरत",
        "کھانا", "راشن", "دوا*", "دوائی", "کمبل", "کپڑے", "دودھ", "امداد", "پینے کا پانی", "ترپال",
        "خیمہ", "چاہیے", "چاہئے", "ضرورت",
    ),
    "shelter": (
        "shelter*", "camp*", "evacuat*", "where to go", "where should we go", "where can we go",
        "safe place", "higher ground", "safe zone", "relief cent*", "ashroy*", "asroy*", "ashray*",
        "kothay jabo", "kothai jabo", "kahan jaye*", "kaha jaye*", "kidhar jaye*", "panah",
        "surakshit jagah", "nirapod jayga",
        "আশ্রয়*", "শেল্টার", "কোথায় যাব*", "নিরাপদ জায়গা", "উঁচু জায়গা", "ক্যাম্প",
        "आश्रय*", "शिविर", "कैंप", "कहां जाए*", "कहाँ जाएं", "सुरक्षित जगह", "ऊंची जगह",
        "پناہ*", "کیمپ", "کہاں جائیں", "محفوظ جگہ", "اونچی جگہ",
    ),
}  # fmt: skip

LOW_SIGNALS: dict[str, tuple[str, ...]] = {
    "thanks": (
        "thank*", "thx", "thanks", "dhonnobad", "dhonyobad", "dhanyavad", "dhanyawad", "shukriya",
        "sukriya",
        "ধন্যবাদ",
        "धन्यवाद", "शुक्रिया",
        "شکریہ",
    ),
    "safe": (
        "safe now", "we are safe", "were safe", "all good", "fine now", "we are fine", "thik achi",
        "thik achhi", "safe achi", "nirapode achi", "mehfooz hain", "theek hain", "thik hain",
        "নিরাপদে আছি", "ঠিক আছি", "ভালো আছি",
        "सुरक्षित हैं", "सुरक्षित है", "ठीक हैं",
        "محفوظ ہیں", "ٹھیک ہیں",
    ),
    "status_enquiry": (
        "status", "any update*", "update*", "when will", "what time", "any news", "kobe", "kokhon",
        "kab", "kya khabar", "koi khabar",
        "আপডেট", "খবর কী", "কখন",
        "कब", "क्या खबर", "अपडेट",
        "کب", "کیا خبر", "اپڈیٹ",
    ),
}  # fmt: skip

# Words that make a neighbouring term harmless ("blood pressure" is not bleeding).
_EXCLUDE = (
    "blood pressure", "blood sugar", "blood group", "blood test", "রক্তচাপ", "রক্তের গ্রুপ",
    "रक्तचाप", "بلڈ پریشر", "fire brigade", "fire service", "ceasefire",
    "battery ~ dying", "phone ~ dying", "mobile ~ dying", "charge ~ dying",
)  # fmt: skip

_BITE = (
    "bit", "bite*", "bitten", "কেটে*", "কাট*", "কামড়*", "দংশ*", "काट*", "डस*", "کاٹ*", "ڈس*",
    "kata", "kat liya", "kaat*", "kete*", "kamr*", "kamor*", "das liya", "dasa", "dans*",
)  # fmt: skip
_CHILD = (
    "child*", "kid*", "baby", "babies", "infant*", "toddler*", "newborn*", "son",
    "daughter", "little one*",
    "বাচ্চা*", "শিশু*", "ছেলে*", "মেয়ে*", "নবজাতক",
    "बच्चा", "बच्चे", "बच्ची", "बच्चों", "शिशु", "बेटा", "बेटी", "नवजात", "लड़का", "लड़की",
    "بچہ", "بچے", "بچی", "بچوں", "بیٹا", "بیٹی", "نومولود", "شیرخوار",
    "bachcha", "bachche", "bacche", "bache", "bachi", "bachon", "bachhe", "baccha", "bacha",
    "shishu", "chele*", "meye*", "beta", "beti", "nobojatok", "navjat", "ladka", "ladki",
)  # fmt: skip


def _match_form(text: str) -> str:
    """normalize() with punctuation and symbols as spaces, padded: words are runs of non-spaces.

    Python's \\w misses Indic vowel signs, so boundaries are spaces rather than \\b; this also
    keeps the compiled patterns small (literal spaces instead of big character classes).
    """
    text = "".join(" " if unicodedata.category(ch)[0] in "PSZ" else ch for ch in normalize(text))
    return f" {_SPACE.sub(' ', text).strip()} "


def _word_regex(word: str) -> str:
    stem = word.endswith("*")
    core = " ".join(re.escape(w) for w in _match_form(word.removesuffix("*")).split())
    # "drown*" is a stem: any further letters of the same word may follow.
    return core + "[^ ]*" if stem else core


def _term_regex(term: str) -> str:
    chunks = [" ".join(_word_regex(word) for word in chunk.split()) for chunk in term.split(" ~ ")]
    # " ~ " lets up to three words stand between ("pani ab bahut barh raha").
    return " (?:[^ ]+ ){0,3}".join(chunks)


def _compile(terms: Iterable[str]) -> re.Pattern[str]:
    alternation = "|".join(_term_regex(t) for t in terms)
    return re.compile(f"(?<= )(?:{alternation})(?= )")


def _compile_table(table: Mapping[str, tuple[str, ...]]) -> dict[str, re.Pattern[str]]:
    return {name: _compile(terms) for name, terms in table.items()}


_CRITICAL = _compile_table(CRITICAL_SIGNALS)
_HIGH = _compile_table(HIGH_SIGNALS)
_MEDIUM = _compile_table(MEDIUM_SIGNALS)
_LOW = _compile_table(LOW_SIGNALS)
_MODIFIERS = _compile_table({"bite": _BITE, "child": _CHILD})
_EXCLUDE_RE = _compile(_EXCLUDE)

# --- symbols ----------------------------------------------------------------------------------
# Someone clinging to a roof types what they can: an emoji string or a Morse SOS is a message.
# _match_form() turns symbols into spaces, so they are read from the raw text instead (a
# codepoint test: "⚠️", "🏊‍♀️" and skin-toned forms contain the base symbol).
SYMBOL_SIGNALS: dict[str, str] = {
    "sos": "\U0001f198",  # 🆘: a life threat on its own
    "alarm": "\U0001f6a8\u26a0\U0001f691",  # 🚨 ⚠ 🚑: HIGH alone, a life threat with a scene
    "water_rising": "\U0001f30a",  # 🌊
}
SYMBOL_MODIFIERS: dict[str, str] = {
    "home_symbol": "\U0001f3e0\U0001f3e1\U0001f3d8\U0001f3da\U0001f6d6",  # 🏠 🏡 🏘 🏚 🛖
    "drowning_symbol": "\U0001f3ca\U0001f6df",  # 🏊 🛟
    "fire_symbol": "\U0001f525",  # 🔥
    "distress_symbol": (  # 😭 😱 😰 😨 😢 😩 😫 🥺 😖 😣 😧
        "\U0001f62d\U0001f631\U0001f630\U0001f628\U0001f622\U0001f629\U0001f62b\U0001f97a"
        "\U0001f616\U0001f623\U0001f627"
    ),
    "pray_symbol": "\U0001f64f",  # 🙏: a plea or a thank-you; never urgent on its own
}
# Symbols that say something happened: a message of only these is unclassified, not "empty".
_TELLING_SYMBOLS = frozenset({"home_symbol", "drowning_symbol", "fire_symbol", "distress_symbol"})
# ... --- ... in dots and dashes of any kind, spaced or not ("…---…" too, via NFKC).
_MORSE_SOS = re.compile(r"(?:[.·•∙]\s*){3}(?:[-–—−_]\s*){3}(?:[.·•∙]\s*){2}[.·•∙]")


def _symbols(text: str) -> tuple[set[str], set[str]]:
    """(signals, modifiers) carried by emoji and Morse in the raw text."""
    plain = unicodedata.normalize("NFKC", text)
    signals = {name for name, chars in SYMBOL_SIGNALS.items() if any(c in plain for c in chars)}
    if _MORSE_SOS.search(plain):
        signals.add("sos")
    mods = {name for name, chars in SYMBOL_MODIFIERS.items() if any(c in plain for c in chars)}
    return signals, mods


# Combinations that make a HIGH picture a life threat: (reason, required, any-of).
_CRITICAL_COMBOS: tuple[tuple[str, frozenset[str], frozenset[str]], ...] = (
    (
        "water_rising+vulnerable",
        frozenset({"water_rising"}),
        frozenset(
            {
                "roof", "plea", "child", "elderly", "stranded", "pregnant", "injured", "sick",
                "boat_request", "danger", "pain", "alarm", "distress_symbol", "pray_symbol",
                "drowning_symbol",
            }
        ),
    ),
    (
        "alarm+scene",
        frozenset({"alarm"}),
        frozenset(
            {
                "home_symbol", "drowning_symbol", "fire_symbol", "distress_symbol", "roof",
                "stranded", "child", "injured", "danger", "plea",
            }
        ),
    ),
    (
        "drowning_symbol+distress",
        frozenset({"drowning_symbol"}),
        frozenset({"distress_symbol", "pray_symbol", "plea", "danger"}),
    ),
    (
        "fire_symbol+home",
        frozenset({"fire_symbol"}),
        frozenset({"home_symbol", "distress_symbol", "plea", "danger"}),
    ),
    ("snake+bite", frozenset({"snake", "bite"}), frozenset()),
    ("child+danger", frozenset({"child"}), frozenset({"danger", "stranded", "roof"})),
    (
        "pregnant+distress",
        frozenset({"pregnant"}),
        frozenset({"pain", "danger", "stranded", "roof", "plea", "sick"}),
    ),
    (
        "roof+distress",
        frozenset({"roof"}),
        frozenset({"plea", "danger", "elderly", "injured", "sick", "pregnant", "boat_request"}),
    ),
)  # fmt: skip
_HIGH_COMBOS: tuple[tuple[str, frozenset[str]], ...] = (
    ("child+missing", frozenset({"child", "missing"})),
)


def _matches(table: Mapping[str, re.Pattern[str]], text: str) -> set[str]:
    return {name for name, rx in table.items() if rx.search(text)}


# --- keyword commands -------------------------------------------------------------------------

_COMMAND_WORDS: dict[Keyword, tuple[str, ...]] = {
    Keyword.JOIN: (
        "join", "subscribe", "যোগ", "যোগ দিন", "যোগ দিতে চাই", "যুক্ত করুন", "জয়েন",
        "जुड़ें", "जुड़ना", "जोड़ें", "जोड़ो", "शामिल", "शामिल करें", "जॉइन",
        "شامل", "شامل کریں", "شامل کرو", "جوائن",
        "jog", "jog din", "judo", "jodo", "judna", "shamil", "shamil karo",
    ),
    Keyword.STOP: (
        "stop", "unsubscribe", "cancel", "quit",
        "বন্ধ", "বন্ধ করুন", "বন্ধ করো", "থামুন", "থামো",
        "रोको", "रोकें", "बंद", "बंद करो", "बंद करें",
        "بند", "بند کرو", "بند کریں", "روکو",
        "bondho", "bondo", "bandh", "band", "band karo", "roko", "ruko", "thamo",
    ),
    # Not "help"/"madad"/…: on a disaster line those are cries for help (a plea opens a case).
    Keyword.HELP: (
        "info", "menu", "?", "keywords",
        "তথ্য", "মেনু",
        "जानकारी", "मेनू",
        "معلومات", "مینو",
        "tottho", "jankari", "maloomat",
    ),
    Keyword.STATUS: (
        "status", "update", "case",
        "অবস্থা", "স্ট্যাটাস",
        "स्थिति", "स्टेटस", "हाल",
        "حالت", "صورتحال", "اسٹیٹس",
        "obostha", "sthiti", "halat",
    ),
}  # fmt: skip
_COMMANDS: dict[str, Keyword] = {
    normalize(word): cmd for cmd, words in _COMMAND_WORDS.items() for word in words
}
_TAKES_ARGUMENT = frozenset({Keyword.JOIN, Keyword.STATUS})
_POLITE = frozenset({"please", "pls", "plz", "now"})
# Words people add to an opt-out ("STOP ALERTS", "stop sms", "unsubscribe me", "alert band karo").
_OPT_OUT_FILLER = frozenset(
    {"alert", "alerts", "sms", "message", "messages", "msg", "msgs", "me", "all", "it", "this",
     "these", "thanks", "thank", "you", "karo", "karen", "koro", "করো", "করুন", "করেন", "करो",
     "करें", "کرو", "کریں", "এলার্ট", "अलर्ट", "الرٹ"}
)  # fmt: skip
_CASE_CODE_RE = re.compile(r"(?:lf-?)?\d{1,7}", re.I)
MAX_AREA_WORDS = 6
_EDGE_PUNCT = "#/!.,;:-–—\"'()[]<>*_~।॥۔،؟ \t\n"


def parse_keyword(text: str) -> tuple[Keyword, str] | None:
    """``(command, argument)`` when the message is an SMS keyword command, else None.

    The argument (JOIN area, STATUS case code) keeps the sender's spelling and case.
    """
    raw = unicodedata.normalize("NFC", text).strip().strip(_EDGE_PUNCT + "!?")
    if not raw:
        return (Keyword.HELP, "") if text.strip() and set(text.strip()) <= set("?") else None
    tokens = raw.split()
    if len(tokens) > 1 and normalize(tokens[0].strip(_EDGE_PUNCT)) in _OPT_OUT_FILLER:
        opt_out = parse_keyword(" ".join(tokens[1:]))  # "alert band karo", "sms stop"
        return opt_out if opt_out is not None and opt_out[0] is Keyword.STOP else None
    # Longest keyword first: "বন্ধ করুন" before "বন্ধ".
    for width in (3, 2, 1):
        if len(tokens) < width:
            continue
        head = normalize(" ".join(tokens[:width]).strip(_EDGE_PUNCT))
        cmd = _COMMANDS.get(head)
        if cmd is None:
            continue
        rest = [t for t in tokens[width:] if normalize(t.strip(_EDGE_PUNCT)) not in _POLITE]
        if cmd is Keyword.STOP:
            rest = [
                t
                for t in rest
                if normalize(t.strip(_EDGE_PUNCT)) not in _OPT_OUT_FILLER
                and not _CASE_CODE_RE.fullmatch(t.strip(_EDGE_PUNCT))
            ]
        argument = " ".join(rest).strip(_EDGE_PUNCT)
        if argument and cmd not in _TAKES_ARGUMENT:
            return None  # "info, water is rising" is a message, not a menu request
        if cmd is Keyword.STATUS and argument and not _CASE_CODE_RE.fullmatch(argument):
            return None  # "update: drowning" is a report; the argument is only ever a case code
        if cmd is Keyword.JOIN and len(argument.split()) > MAX_AREA_WORDS:
            return None  # "join us we are trapped on the roof…" is a message
        return cmd, argument
    return None


# --- triage -----------------------------------------------------------------------------------


def triage(text: str) -> Triage:
    """Priority, language and reasons for one inbound message. Pure and deterministic."""
    lang = detect_script_lang(text)
    command = parse_keyword(text)
    keyword, argument = command if command else (None, "")
    norm = _EXCLUDE_RE.sub(" ", _match_form(text))

    symbols, symbol_mods = _symbols(text)
    critical = _matches(_CRITICAL, norm) | (symbols & CRITICAL_SIGNALS.keys())
    high = _matches(_HIGH, norm) | (symbols - CRITICAL_SIGNALS.keys())
    medium = _matches(_MEDIUM, norm)
    low = _matches(_LOW, norm)
    mods = _matches(_MODIFIERS, norm) | symbol_mods
    present = critical | high | medium | mods

    combos: list[str] = []
    for name, required, any_of in _CRITICAL_COMBOS:
        if required <= present and (not any_of or any_of & present):
            combos.append(name)
    high_combos = [name for name, required in _HIGH_COMBOS if required <= present]

    if keyword is not None and (critical or combos or high - {"plea"} or high_combos):
        # "join us we are trapped", "update: drowning": a report that starts like a keyword.
        keyword, argument = None, ""

    if critical or combos:
        priority = Priority.CRITICAL
    elif high - {"plea"} or high_combos:
        priority = Priority.HIGH
    elif "plea" in high and not ({"thanks", "safe"} & low):
        # "thanks for the help" is not a plea; "help!" is.
        priority = Priority.HIGH
    elif medium:
        priority = Priority.MEDIUM
    elif (
        low
        or keyword is not None
        or "?" in text
        or (not norm.strip() and not symbol_mods & _TELLING_SYMBOLS)
    ):
        priority = Priority.LOW
    else:
        # Nothing recognised and not a question: unknown is not the same as safe.
        priority = Priority.MEDIUM
        low.add("unclassified")

    reasons = (
        *sorted(critical),
        *sorted(high),
        *sorted(medium),
        *sorted(mods),
        *(sorted(low) if priority is Priority.LOW or "unclassified" in low else ()),
        *combos,
        *high_combos,
    )
    return Triage(
        priority=priority,
        lang=lang,
        life_threat=priority is Priority.CRITICAL,
        reasons=reasons,
        keyword=keyword,
        argument=argument,
    )
