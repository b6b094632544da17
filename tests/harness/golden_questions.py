"""Golden retrieval set: victim-style questions (EN/BN/HI/UR) with the protocol topic that must
come back in the top 3. Written for this test, not copied from the library text.

Used by tests/test_protocols.py and bench/bench_protocols.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Golden:
    lang: str
    question: str
    topic: str


GOLDEN: tuple[Golden, ...] = (
    # English
    Golden("en", "water is coming into our house now what do we do", "flood-during"),
    Golden("en", "river rising 3 days rain how to get ready before flood comes", "flood-before"),
    Golden("en", "water gone down, can we go back home and clean up?", "flood-after"),
    Golden("en", "police telling us to leave village, what to take with us", "evacuation"),
    Golden("en", "tube well is under water, how do i make water safe to drink", "drinking-water"),
    Golden("en", "my son has watery stool many times and is very weak", "diarrhoea-ors"),
    Golden("en", "we pulled neighbour out of river he is not breathing", "drowning"),
    Golden("en", "deep cut on leg from tin sheet, blood not stopping", "bleeding"),
    Golden("en", "old man shivering, wet clothes all night, body very cold", "hypothermia"),
    Golden("en", "wire fell in the water and my brother got a shock", "electric-shock"),
    Golden("en", "snake bit my wife on the foot in the paddy field", "snakebite"),
    Golden("en", "wall collapsed, a man is trapped under the bricks", "debris-injuries"),
    Golden("en", "school shelter is crowded, no toilet, people getting sick", "shelter-hygiene"),
    Golden("en", "how to keep my baby and my old mother safe in camp", "children-elderly"),
    Golden(
        "en",
        "lightning hit a man in the field, he is lying on the ground, can we touch him",
        "lightning",
    ),
    Golden(
        "en", "a street dog bit my daughter on the hand, does she need an injection", "animal-bites"
    ),
    Golden("en", "my wife is in labour on the boat, no midwife, the baby is coming", "childbirth"),
    Golden(
        "en",
        "grandfather has heavy pain in chest going to his left arm and sweating",
        "chest-pain-stroke",
    ),
    Golden("en", "my son fell down shaking all over, eyes rolling, foam from mouth", "seizures"),
    Golden("en", "child swallowed a coin and cannot breathe or speak", "choking"),
    Golden("en", "man collapsed and is not breathing, how do i do chest compressions", "cpr"),
    Golden("en", "hot dal fell on my baby's leg, skin is red with blisters", "burns"),
    Golden(
        "en",
        "we ran the generator inside the room at night, now everyone has headache and vomiting",
        "carbon-monoxide",
    ),
    Golden("en", "high fever for 3 days with body pain, which tablet can i take", "fever-dengue"),
    Golden("en", "my insulin got washed away and we have no fridge", "lost-medicines"),
    Golden(
        "en",
        "my mother keeps crying since we lost the house, she does not eat or sleep",
        "psychological-first-aid",
    ),
    Golden(
        "en",
        "my feet are white, wrinkled and painful after days standing in water",
        "skin-feet-eyes",
    ),
    # Bengali
    Golden("bn", "ঘরে পানি ঢুকছে, এখন কী করব?", "flood-during"),
    Golden("bn", "নদীর পানি বাড়ছে, বন্যা আসার আগে কী প্রস্তুতি নেব", "flood-before"),
    Golden("bn", "পানি নেমে গেছে, বাড়ি ফিরে কী সাবধানতা নিতে হবে", "flood-after"),
    Golden("bn", "আমাদের গ্রাম ছেড়ে চলে যেতে বলছে, সাথে কী নেব", "evacuation"),
    Golden("bn", "খাওয়ার পানি কীভাবে নিরাপদ করব, টিউবওয়েল ডুবে গেছে", "drinking-water"),
    Golden("bn", "বাচ্চার বারবার পাতলা পায়খানা হচ্ছে, স্যালাইন কীভাবে বানাব", "diarrhoea-ors"),
    Golden("bn", "একটা ছেলে পানিতে ডুবে গিয়েছিল, এখন শ্বাস নিচ্ছে না", "drowning"),
    Golden("bn", "হাত অনেক কেটে গেছে, রক্ত থামছে না", "bleeding"),
    Golden("bn", "সারারাত ভেজা কাপড়ে ছিলাম, দাদু খুব কাঁপছে, শরীর ঠান্ডা", "hypothermia"),
    Golden("bn", "বিদ্যুতের তার ছিঁড়ে পানিতে পড়েছে, একজন শক খেয়েছে", "electric-shock"),
    Golden("bn", "আমার ভাইকে সাপে কামড়েছে, কী করব", "snakebite"),
    Golden("bn", "ঘরের দেয়াল ভেঙে একজন চাপা পড়েছে, পা ভেঙেছে মনে হয়", "debris-injuries"),
    Golden("bn", "আশ্রয়কেন্দ্রে টয়লেট নেই, অনেক মানুষ, অসুখ ছড়াচ্ছে", "shelter-hygiene"),
    Golden("bn", "মাঠে কাজ করার সময় বাজ পড়েছে, একজন অজ্ঞান হয়ে পড়ে আছে", "lightning"),
    Golden("bn", "কুকুরে কামড়েছে, জলাতঙ্কের ইনজেকশন লাগবে কি?", "animal-bites"),
    Golden("bn", "বউয়ের প্রসব ব্যথা উঠেছে, নৌকায় আছি, দাই নেই", "childbirth"),
    Golden("bn", "বাবার মুখ বেঁকে গেছে, এক হাত নাড়াতে পারছে না", "chest-pain-stroke"),
    Golden("bn", "ছেলের খিঁচুনি হচ্ছে, মুখ দিয়ে ফেনা বের হচ্ছে", "seizures"),
    Golden("bn", "বাচ্চার গলায় কয়েন আটকে গেছে, শ্বাস নিতে পারছে না", "choking"),
    Golden("bn", "লোকটা পড়ে গেছে, শ্বাস নিচ্ছে না, বুকে চাপ কীভাবে দেব", "cpr"),
    Golden("bn", "গরম ভাতের মাড় পড়ে হাত পুড়ে গেছে", "burns"),
    Golden("bn", "ঘরের ভেতরে জেনারেটর চালিয়েছি, সবার মাথা ঘুরছে আর বমি হচ্ছে", "carbon-monoxide"),
    Golden("bn", "তিন দিন ধরে জ্বর আর গায়ে ব্যথা, ডেঙ্গু হলো কি না", "fever-dengue"),
    Golden("bn", "বন্যায় ইনসুলিন ভেসে গেছে, ফ্রিজও নেই", "lost-medicines"),
    Golden("bn", "ঘর হারিয়ে মা সারাদিন কাঁদছে, কিছু খাচ্ছে না, কী করব", "psychological-first-aid"),
    Golden("bn", "ক্যাম্পে সবার চোখ লাল হয়ে পানি পড়ছে", "skin-feet-eyes"),
    # Hindi
    Golden("hi", "घर में पानी भर रहा है, अभी क्या करें", "flood-during"),
    Golden("hi", "बाढ़ आने वाली है, पहले से क्या तैयारी करें", "flood-before"),
    Golden("hi", "पानी उतर गया है, घर लौटकर क्या सावधानी रखें", "flood-after"),
    Golden("hi", "गाँव खाली करने को कहा है, साथ में क्या ले जाएँ", "evacuation"),
    Golden("hi", "पीने का पानी गंदा है, उसे कैसे साफ करें", "drinking-water"),
    Golden("hi", "बच्चे को बार बार दस्त हो रहे हैं, घोल कैसे बनाएँ", "diarrhoea-ors"),
    Golden("hi", "आदमी पानी में डूब गया था, बाहर निकाला पर साँस नहीं ले रहा", "drowning"),
    Golden("hi", "पैर में गहरा घाव है, खून बंद नहीं हो रहा", "bleeding"),
    Golden("hi", "रात भर गीले कपड़ों में रहे, अम्मा काँप रही हैं, बहुत ठंड लग रही", "hypothermia"),
    Golden("hi", "बिजली का तार पानी में गिरा, एक लड़के को करंट लग गया", "electric-shock"),
    Golden("hi", "खेत में काम करते समय साँप ने काट लिया", "snakebite"),
    Golden("hi", "दीवार गिर गई, एक आदमी मलबे में दबा है", "debris-injuries"),
    Golden("hi", "राहत शिविर में बहुत भीड़ है, शौचालय नहीं, बीमारी फैल रही है", "shelter-hygiene"),
    Golden("hi", "शिविर में छोटे बच्चों और बुज़ुर्ग दादी का ध्यान कैसे रखें", "children-elderly"),
    Golden("hi", "खेत में आसमानी बिजली गिरी, एक आदमी बेहोश पड़ा है", "lightning"),
    Golden("hi", "कुत्ते ने बच्चे को काट लिया, क्या टीका लगवाना पड़ेगा", "animal-bites"),
    Golden("hi", "पत्नी को प्रसव पीड़ा शुरू हो गई, नाव पर हैं, कोई दाई नहीं", "childbirth"),
    Golden("hi", "पापा के सीने में तेज़ दर्द है और पसीना आ रहा है", "chest-pain-stroke"),
    Golden("hi", "बच्चे को झटके आ रहे हैं और मुँह से झाग निकल रहा है", "seizures"),
    Golden("hi", "बच्चे के गले में सिक्का फँस गया, साँस नहीं ले पा रहा", "choking"),
    Golden("hi", "आदमी गिर गया, साँस नहीं चल रही, छाती कैसे दबाएँ", "cpr"),
    Golden("hi", "खौलता पानी गिरने से हाथ जल गया, छाले पड़ गए", "burns"),
    Golden("hi", "कमरे में जनरेटर चलाया, सबको चक्कर और उल्टी हो रही है", "carbon-monoxide"),
    Golden("hi", "तीन दिन से तेज़ बुखार और बदन दर्द है, कौन सी गोली लें", "fever-dengue"),
    Golden("hi", "बाढ़ में टीबी की दवा बह गई, अब क्या करें", "lost-medicines"),
    Golden("hi", "घर उजड़ने के बाद माँ बस रोती रहती है, न खाती है न सोती है", "psychological-first-aid"),
    Golden("hi", "कई दिन पानी में रहने से पैर सफ़ेद होकर सूज गए, दर्द है", "skin-feet-eyes"),
    # Urdu
    Golden("ur", "گھر میں پانی آ رہا ہے، ابھی کیا کریں", "flood-during"),
    Golden("ur", "سیلاب آنے والا ہے، پہلے سے کیا تیاری کریں", "flood-before"),
    Golden("ur", "پانی اتر گیا ہے، گھر واپس جا کر کیا احتیاط کریں", "flood-after"),
    Golden("ur", "ہمیں گاؤں خالی کرنے کو کہا گیا ہے، ساتھ کیا لے جائیں", "evacuation"),
    Golden("ur", "پینے کا پانی گندا ہے، اسے کیسے صاف کریں", "drinking-water"),
    Golden("ur", "بچے کو بار بار پتلے دست آ رہے ہیں، او آر ایس کیسے بنائیں", "diarrhoea-ors"),
    Golden("ur", "لڑکا پانی میں ڈوب گیا تھا، اب سانس نہیں لے رہا", "drowning"),
    Golden("ur", "ہاتھ پر گہرا زخم ہے، خون نہیں رک رہا", "bleeding"),
    Golden("ur", "رات بھر گیلے کپڑوں میں رہے، ابا کانپ رہے ہیں، جسم ٹھنڈا ہے", "hypothermia"),
    Golden("ur", "بجلی کا تار پانی میں گرا، بھائی کو کرنٹ لگ گیا", "electric-shock"),
    Golden("ur", "میری بہن کو سانپ نے ڈس لیا ہے", "snakebite"),
    Golden("ur", "چھت گر گئی، ایک آدمی ملبے کے نیچے دبا ہوا ہے", "debris-injuries"),
    Golden("ur", "کیمپ میں بیت الخلا نہیں ہے، بیماری پھیل رہی ہے", "shelter-hygiene"),
    Golden("ur", "کیمپ میں چھوٹے بچوں اور بوڑھوں کا خیال کیسے رکھیں", "children-elderly"),
    Golden("ur", "کھیت میں آسمانی بجلی گری، ایک آدمی بے ہوش پڑا ہے", "lightning"),
    Golden("ur", "کتے نے بیٹے کو کاٹ لیا، کیا ٹیکا لگوانا ہوگا", "animal-bites"),
    Golden("ur", "بیوی کو درد زہ شروع ہو گیا، کشتی میں ہیں، کوئی دائی نہیں", "childbirth"),
    Golden("ur", "ابو کا منہ ٹیڑھا ہو گیا اور ایک بازو نہیں اٹھ رہا", "chest-pain-stroke"),
    Golden("ur", "بچے کا جسم اکڑ گیا اور جھٹکے آ رہے ہیں", "seizures"),
    Golden("ur", "بچے کے گلے میں سکہ اٹک گیا، سانس نہیں لے پا رہا", "choking"),
    Golden("ur", "آدمی گر گیا اور سانس نہیں لے رہا، سینہ کیسے دبائیں", "cpr"),
    Golden("ur", "گرم چائے گرنے سے بچی کا ہاتھ جل گیا", "burns"),
    Golden("ur", "کمرے میں کوئلے کی انگیٹھی جلا کر سوئے، سب کو سر درد اور قے", "carbon-monoxide"),
    Golden("ur", "تین دن سے تیز بخار ہے، ڈینگی تو نہیں، کون سی دوا دیں", "fever-dengue"),
    Golden("ur", "سیلاب میں شوگر کی دوا اور انسولین بہہ گئی", "lost-medicines"),
    Golden(
        "ur", "گھر ڈوبنے کے بعد امی بس روتی رہتی ہیں، کچھ نہیں کھاتیں", "psychological-first-aid"
    ),
    Golden("ur", "کیمپ میں سب کی آنکھیں سرخ ہیں اور پانی بہہ رہا ہے", "skin-feet-eyes"),
)


class _HasTopic(Protocol):
    @property
    def topic(self) -> str: ...


class _Searcher(Protocol):
    async def search(self, query: str, lang: str, k: int = 4) -> Sequence[_HasTopic]: ...


@dataclass(frozen=True)
class GoldenResult:
    accuracy: float
    hits: int
    total: int
    misses: list[tuple[Golden, list[str]]]


async def golden_accuracy(search: _Searcher, k: int = 3) -> GoldenResult:
    """Share of golden questions whose expected topic is among the top ``k`` passages."""
    hits = 0
    misses: list[tuple[Golden, list[str]]] = []
    for g in GOLDEN:
        passages = await search.search(g.question, g.lang, k=k)
        topics = [p.topic for p in passages[:k]]
        if g.topic in topics:
            hits += 1
        else:
            misses.append((g, topics))
    return GoldenResult(hits / len(GOLDEN), hits, len(GOLDEN), misses)
