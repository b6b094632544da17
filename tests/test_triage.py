"""Deterministic triage: a realistic multilingual table, keyword commands, robustness."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.lang import detect_script_lang, is_rtl
from bot.models import Priority
from bot.triage import Keyword, normalize, parse_keyword, triage

C, H, M, L = Priority.CRITICAL, Priority.HIGH, Priority.MEDIUM, Priority.LOW

# (message, expected priority). Written as victims write: typos, no punctuation, mixed scripts.
CASES: list[tuple[str, Priority]] = [
    # --- English ------------------------------------------------------------------------------
    ("HELP!!! water is rising fast we are on the roof with 2 kids", C),
    ("my father is drowning near the bridge pls come", C),
    ("we are trapped inside the house, water upto chest level", C),
    ("grandmother unconscious, not waking up", C),
    ("baby not breathing properly", C),
    ("my son was bitten by a snake 20 min ago, leg swelling", C),
    ("wife in labour, no boat, road cut off", C),
    ("electric wire fell in the water, a boy got a shock", C),
    ("our house collapsed, 3 people under rubble", C),
    ("Man bleeding heavily from head, glass cut", C),
    ("SOS 4 people on tin roof, water risingg", C),
    ("fire in the relief camp kitchen", C),
    ("my leg is injured, cant walk", H),
    ("old couple stranded in village near school, no food since yesterday", H),
    ("child has diarrhoea and fever since 2 days", H),
    ("we have had no food or water for 3 days", H),
    ("village is cut off, road gone", H),
    ("need medicine and drinking water for 20 families", M),
    ("where is the nearest shelter?", M),
    ("looking for my brother Rahim, last seen at the market", M),
    ("can you send tarpaulin and blankets", M),
    ("thank you, we reached the camp safely", L),
    ("any update on case LF-4821?", L),
    ("what time does the relief truck come", M),
    ("thanks for the help, all good now", L),
    # --- Bengali ------------------------------------------------------------------------------
    ("আমার বাচ্চা পানিতে ডুবে যাচ্ছে বাঁচাও", C),
    ("আমরা ছাদে আটকা পড়েছি, পানি বাড়ছে", C),
    ("বাবা অজ্ঞান হয়ে গেছে", C),
    ("মাকে সাপে কেটেছে, তাড়াতাড়ি আসুন", C),
    ("আমার স্ত্রীর প্রসব ব্যথা উঠেছে, নৌকা দরকার", C),
    ("ছেলেটা শ্বাস নিচ্ছে না", C),
    ("পা থেকে অনেক রক্ত পড়ছে", C),
    ("আমাদের গ্রাম পানিবন্দি, দুই দিন খাবার নেই", H),
    ("আমার দাদির জ্বর, ওষুধ লাগবে", H),
    ("বাচ্চার পাতলা পায়খানা হচ্ছে", H),
    ("আশ্রয়কেন্দ্র কোথায়?", M),
    ("আমাদের শুকনো খাবার আর কম্বল দরকার", M),
    ("ধন্যবাদ, আমরা নিরাপদে আছি", L),
    # --- Hindi --------------------------------------------------------------------------------
    ("मेरा भाई डूब रहा है जल्दी आओ", C),
    ("हम छत पर फंसे हुए हैं पानी बढ़ रहा है", C),
    ("माँ बेहोश हो गई है", C),
    ("बच्चे को साँप ने काटा", C),
    ("पापा की सांस नहीं चल रही", C),
    ("बहुत खून बह रहा है", C),
    ("बचाओ बचाओ", C),
    ("मेरे पैर में चोट लगी है", H),
    ("दो दिन से खाना नहीं मिला", H),
    ("बुजुर्ग दादी बीमार हैं", H),
    ("राहत शिविर कहाँ है?", M),
    ("हमें दवाई और कंबल चाहिए", M),
    ("धन्यवाद, हम सुरक्षित हैं", L),
    # --- Urdu ---------------------------------------------------------------------------------
    ("میرا بیٹا ڈوب رہا ہے", C),
    ("ہم چھت پر پھنسے ہوئے ہیں پانی بڑھ رہا ہے", C),
    ("ابو بے ہوش ہیں", C),
    ("میری بہن کو سانپ نے کاٹا ہے", C),
    ("خون بہت بہہ رہا ہے", C),
    ("بچاؤ ہمیں", C),
    ("میرا بازو ٹوٹ گیا ہے، چوٹ بہت ہے", H),
    ("تین دن سے کھانا نہیں", H),
    ("ہمیں راشن اور دوائی چاہیے", M),
    ("شکریہ، ہم محفوظ ہیں", L),
    # --- romanised ----------------------------------------------------------------------------
    ("bachao pani barhche amader ghore", C),
    ("bachaooo amra chade atke porechi", C),
    ("pani barh raha hai chhat par hain bachao", C),
    ("mera beta doob raha hai", C),
    ("amar chele dube jacche", C),
    ("hum phanse hue hain", C),
    ("saap ne kata mere bhai ko", C),
    ("sape keteche amar babake", C),
    ("dadi behosh ho gayi", C),
    ("khoon bahut beh raha hai", C),
    ("current laga ladke ko", C),
    ("madad karo pani barh raha hai", C),
    ("bukhar hai bachche ko 3 din se", H),
    ("khana nahi hai 2 din se", H),
    ("amader khabar nai", H),
    ("ration chahiye 10 family", M),
    ("shelter kothay?", M),
    ("shukriya bhai", L),
    ("dhonnobad", L),
    # --- a second batch, written after the vocabulary, to keep the accuracy figure honest -------
    ("pls send boat 5 ppl on roof", C),
    ("we r stuck on the 2nd floor, water still coming up", C),
    ("my husband fell and hit his head, hes not talking", C),
    ("our cattle drowned, what to do", M),  # over-triaged to CRITICAL: accepted cost
    ("is the road to Sirajganj open?", L),
    ("ঘরে পানি ঢুকে গেছে, বাচ্চা নিয়ে খাটের উপর বসে আছি", C),
    ("নৌকা পাঠান, আমরা ৬ জন আটকে আছি", C),
    ("ভাই, পানি কমছে, ধন্যবাদ", L),
    ("दादाजी को दिल का दौरा पड़ा है", C),
    ("हमारे गांव में नाव भेजो", H),
    ("پانی گھر میں داخل ہو گیا ہے بچے ڈر رہے ہیں", C),
    ("میری امی کی طبیعت بہت خراب ہے", H),
    ("bhai log jaldi aao pani gale tak aa gaya", C),
    ("amra atka pore gechi nouka pathan", C),
    ("koi sun raha hai? pani bahut hai", H),
]


def test_table_is_big_and_varied() -> None:
    assert len(CASES) >= 60
    langs = {detect_script_lang(text) for text, _ in CASES}
    assert langs == {"en", "bn", "hi", "ur"}
    assert sum(1 for _, p in CASES if p is C) >= 30


def test_no_critical_message_below_high() -> None:
    missed = [(text, triage(text).priority.name) for text, expected in CASES if expected is C]
    missed = [(text, got) for text, got in missed if got not in ("CRITICAL", "HIGH")]
    assert not missed, missed


def test_at_least_90_percent_exact() -> None:
    wrong = [(t, e.name, triage(t).priority.name) for t, e in CASES if triage(t).priority != e]
    accuracy = 1 - len(wrong) / len(CASES)
    assert accuracy >= 0.90, wrong


def test_critical_recall_is_total() -> None:
    # The bar the victims need: every message in the table that we call CRITICAL is CRITICAL.
    missed = [t for t, e in CASES if e is C and triage(t).priority is not C]
    assert not missed, missed


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_case_never_under_triaged(text: str, expected: Priority) -> None:
    # Over-triage is tolerated here (the 90 % test bounds it); under-triage never is.
    result = triage(text)
    assert result.priority <= expected, (result.priority.name, result.reasons)
    assert result.life_threat is (result.priority is C)


# --- symbols: emoji and Morse distress signals (issue 10 item 6) --------------------------------

# (message, expected priority): what people type when they cannot type words.
SYMBOL_CASES: list[tuple[str, Priority]] = [
    ("🆘🌊🏠😭🙏", C),
    ("🆘", C),
    ("🆘🆘🆘", C),
    ("SOS", C),
    ("sos!!!", C),
    ("S.O.S", C),
    ("s.o.s.", C),
    ("S O S", C),
    ("S-O-S 🌊", C),
    ("...---...", C),
    ("... --- ...", C),
    ("…---…", C),
    ("···−−−···", C),
    ("🚨🌊", C),
    ("🚨🏠", C),
    ("⚠️🌊🏠", C),
    ("⚠🏠", C),
    ("⚠️🏊", C),
    ("🚨😭", C),
    ("🌊😭", C),
    ("🌊🙏", C),
    ("🌊🏊‍♀️", C),
    ("🏊😱", C),
    ("🔥🏠", C),
    ("🚑🏠", C),
    ("water 🌊 🏠 🙏🏽", C),
    ("আমাদের বাড়ি 🌊🌊 😭", C),
    ("🚨", H),
    ("⚠️", H),
    ("🌊🌊", H),
    ("🌊🏠", H),
    ("😭", M),
    ("🏠😱", M),
    ("🙏", L),
    ("🙏🏽🙏", L),
    ("👍", L),
    ("😀", L),
    ("❤️", L),
    ("thanks 🙏", L),
    ("ok 👍", M),  # an unknown statement, as before: not safe, not critical
]


@pytest.mark.parametrize(("text", "expected"), SYMBOL_CASES)
def test_distress_symbols(text: str, expected: Priority) -> None:
    result = triage(text)
    assert result.priority is expected, (result.priority.name, result.reasons)
    assert result.life_threat is (expected is C)


def test_symbols_are_reasons_and_never_commands() -> None:
    result = triage("🆘🌊🏠😭🙏")
    assert result.keyword is None
    assert {"sos", "water_rising", "home_symbol", "distress_symbol", "pray_symbol"} <= set(
        result.reasons
    )
    assert "alarm+scene" in triage("⚠️🏠").reasons
    # Dashes and dots in ordinary text are not Morse.
    assert triage("call 01712-345678 ... ok").priority is not C
    assert triage("--- menu ---").priority is not C


def test_terminal_escapes_do_not_hide_a_life_threat() -> None:
    assert triage("\x1b[2J\x1b[31mdrowning\x1b[0m on the roof").priority is C
    assert triage("we are \x1b]8;;http://x\x07trapped\x1b]8;;\x07").priority is C
    assert triage("\x1bP\x9d drowning, unterminated").priority is C  # nothing swallowed


# --- specific behaviours ------------------------------------------------------------------------


def test_life_threat_and_reasons() -> None:
    result = triage("HELP!!! water is rising fast we are on the roof")
    assert result.life_threat
    assert "water_rising" in result.reasons
    assert "roof" in result.reasons
    assert result.lang == "en"


def test_normalisation_repeated_letters_and_case() -> None:
    assert triage("HELPPPP").priority is H
    assert triage("DROWNINGGG").priority is C
    assert normalize("Paani BAAARH") == "pani barh"


def test_normalisation_spelling_variants() -> None:
    # chandrabindu vs anusvara, nukta present or omitted, zero-width joiners
    for text in ("साँप ने काटा", "सांप ने काटा", "साप ने काटा"):
        assert triage(text).priority is C, text
    for text in ("पानी बढ़ रहा है बचाओ", "पानी बढ रहा है बचाओ", "पानी बढ़ रहा\u200d है बचाओ"):
        assert triage(text).priority is C, text
    assert triage("বাচাও").priority is C  # chandrabindu omitted
    assert triage("بچاؤ").priority is C
    assert triage("ہم پھنسے ہوئے ہيں").priority is C  # Arabic yeh instead of Urdu yeh


def test_word_boundaries_avoid_false_alarms() -> None:
    assert triage("आगे क्या करें").priority is not C  # आगे (ahead) is not आग (fire)
    assert triage("dobara message bhejo").priority is not C  # not "doob"
    assert triage("my blood pressure tablets are finished").priority is not C
    assert triage("my phone battery is dying").priority is not C
    assert triage("I'll come tomorrow").priority is not H  # "I'll" is not "ill"


def test_negation_errs_on_urgency() -> None:
    assert triage("no one is injured").priority is H


def test_thanks_is_low_but_unknown_statement_is_not() -> None:
    assert triage("thanks").priority is L
    assert triage("ok").priority is not C
    assert triage("the boat from the north side").priority is M  # unknown, not a question
    assert triage("").priority is L


def test_snake_plus_bite_combination() -> None:
    assert triage("a snake came in and bit my daughter").priority is C
    assert triage("there are snakes in the water").priority is H


def test_lang_detection() -> None:
    assert triage("বাঁচাও").lang == "bn"
    assert triage("बचाओ").lang == "hi"
    assert triage("بچاؤ").lang == "ur"
    assert triage("bachao").lang == "en"
    assert is_rtl("ur")
    assert not is_rtl("bn")
    assert detect_script_lang("।।। ok") == "en"  # punctuation does not vote
    # A native word among a Latin-script address: the sender reads their language.
    assert detect_script_lang("আটকা পড়েছি, Kurigram Sadar Ulipur Road") == "bn"
    assert detect_script_lang("पानी बढ़ रहा Patna Danapur Cantt Road") == "hi"
    assert detect_script_lang("مدد Sukkur Rohri Bypass Road near the bridge") == "ur"
    assert detect_script_lang("HELP পানি") == "bn"


# --- keyword commands ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "command", "argument"),
    [
        ("JOIN Sylhet Sadar", Keyword.JOIN, "Sylhet Sadar"),
        ("join: Char Fasson", Keyword.JOIN, "Char Fasson"),
        ("#join", Keyword.JOIN, ""),
        ("যোগ দিন কুড়িগ্রাম", Keyword.JOIN, "কুড়িগ্রাম"),
        ("जुड़ें पटना", Keyword.JOIN, "पटना"),
        ("شامل سکھر", Keyword.JOIN, "سکھر"),
        ("jog din Gaibandha", Keyword.JOIN, "Gaibandha"),
        ("STOP", Keyword.STOP, ""),
        ("stop.", Keyword.STOP, ""),
        ("Stop please", Keyword.STOP, ""),
        ("বন্ধ", Keyword.STOP, ""),
        ("বন্ধ করুন", Keyword.STOP, ""),
        ("रोको", Keyword.STOP, ""),
        ("बंद करो", Keyword.STOP, ""),
        ("بند", Keyword.STOP, ""),
        ("bondho", Keyword.STOP, ""),
        ("STOP ALERTS", Keyword.STOP, ""),
        ("stop sms please", Keyword.STOP, ""),
        ("unsubscribe me", Keyword.STOP, ""),
        ("STOP LF-4821", Keyword.STOP, ""),
        ("alert band karo", Keyword.STOP, ""),
        ("INFO", Keyword.HELP, ""),
        ("menu!", Keyword.HELP, ""),
        ("?", Keyword.HELP, ""),
        ("তথ্য", Keyword.HELP, ""),
        ("जानकारी", Keyword.HELP, ""),
        ("معلومات", Keyword.HELP, ""),
        ("STATUS", Keyword.STATUS, ""),
        ("status LF-4821", Keyword.STATUS, "LF-4821"),
        ("status 4821", Keyword.STATUS, "4821"),
        ("অবস্থা", Keyword.STATUS, ""),
        ("स्थिति LF-12", Keyword.STATUS, "LF-12"),
        ("حالت", Keyword.STATUS, ""),
        ("obostha", Keyword.STATUS, ""),
    ],
)
def test_commands(text: str, command: Keyword, argument: str) -> None:
    assert parse_keyword(text) == (command, argument)
    result = triage(text)
    assert result.keyword is command
    assert result.argument == argument


@pytest.mark.parametrize(
    "text",
    [
        "help, water is rising",
        "madad karo",
        "stop the boat here we are trapped",
        "update: water rising in our para",
        "please help",
        "we want to join the relief camp",
        "stop the water help",
        "alerts",
        "",
    ],
)
def test_not_commands(text: str) -> None:
    assert parse_keyword(text) is None
    assert triage(text).keyword is None


@pytest.mark.parametrize(
    "text",
    [
        "join us we are trapped on the roof, water rising",
        "Update: drowning",
        "case trapped",
        "Status: sinking!",
        "update: SOS",
        "stop, child drowning",
        "join Char Bhadrasan union ward 5 near the school ghat road",  # no area is that long
    ],
)
def test_reports_that_start_like_a_keyword_are_reports(text: str) -> None:
    assert triage(text).keyword is None


def test_bare_help_is_a_plea_not_the_menu() -> None:
    assert triage("STOP").priority is L
    assert triage("JOIN Sylhet").priority is L
    assert triage("status LF-4821").priority is L
    for cry in ("HELP", "help!", "সাহায্য", "मदद", "مدد", "madad"):
        result = triage(cry)
        assert result.keyword is None, cry
        assert result.priority is H, cry


def test_report_after_keyword_is_still_triaged() -> None:
    assert triage("help, water is rising, kids on the roof").priority is C


# --- robustness ---------------------------------------------------------------------------------

MIXED = (
    "abcdefghijklmnopqrstuvwxyz ABC!?.,'-\n"
    "অআইউএকখগঘচছজঝটঠডঢণতথদধনপফবভমযরলশষসহড়য়ংঁািীুূেৈোৌ্।"
    "अआइउएकखगघचछजझटठडढणतथदधनपफबभमयरलवशषसह़ािीुूेैोौ्ंँ।"
    "ابپتٹجچحخدڈرڑزسشصطعغفقکگلمنوہھیےآ۔،؟ًَُِّْ"
    "\u200c\u200d😀🆘"
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=300), st.text(alphabet=MIXED, max_size=300)))
def test_triage_never_raises_and_is_deterministic(text: str) -> None:
    first = triage(text)
    second = triage(text)
    assert first == second
    assert first.life_threat is (first.priority is Priority.CRITICAL)
    assert first.lang in {"en", "bn", "hi", "ur"}


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=200), st.text(alphabet=MIXED, max_size=200)))
def test_normalize_is_idempotent(text: str) -> None:
    once = normalize(text)
    assert normalize(once) == once


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=MIXED, max_size=120))
def test_appending_a_life_threat_always_escalates(noise: str) -> None:
    # Whatever a victim writes before it, a clear life threat is never diluted.
    assert triage(f"{noise}\nwe are drowning").priority is Priority.CRITICAL
    assert triage(f"{noise}\nবাঁচাও").priority is Priority.CRITICAL
