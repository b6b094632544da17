"""What Lifeline says to victims, per language. Short: every line must fit an SMS budget.

Placeholders: {case}, {team}, {eta}, {note}, {area}. Missing languages fall back to English.
The first reply promises only what will happen: "help is being arranged" is for messages triage
rates HIGH or CRITICAL (coordinators are alerted); a question or a request gets "ack_info"."""

from __future__ import annotations

from bot.models import Priority

TEXTS: dict[str, dict[str, str]] = {
    "ack": {
        "en": "Lifeline: message received. Case {case}. Help is being arranged; we will text you. "
        "If water rises, move to the highest safe place.",
        "bn": "Lifeline: বার্তা পেয়েছি। কেস {case}। সাহায্যের ব্যবস্থা হচ্ছে। পানি বাড়লে সবচেয়ে উঁচু নিরাপদ জায়গায় যান।",
        "hi": "Lifeline: संदेश मिला। केस {case}। मदद की व्यवस्था हो रही है। पानी बढ़े तो सबसे ऊँची सुरक्षित जगह जाएँ।",
        "ur": "Lifeline: پیغام مل گیا۔ کیس {case}۔ مدد کا انتظام ہو رہا ہے۔ پانی بڑھے تو سب سے اونچی محفوظ جگہ جائیں۔",
    },
    "ack_info": {
        "en": "Lifeline: message received. Case {case}. We will text you a reply. If anyone is in "
        "danger, text where you are and how many people.",
        "bn": "Lifeline: বার্তা পেয়েছি। কেস {case}। আমরা আপনাকে জানাব। কেউ বিপদে থাকলে লিখুন কোথায় "
        "আছেন, কতজন।",
        "hi": "Lifeline: संदेश मिला। केस {case}। हम आपको बताएँगे। कोई खतरे में हो तो लिखें आप कहाँ हैं, "
        "कितने लोग।",
        "ur": "Lifeline: پیغام مل گیا۔ کیس {case}۔ ہم آپ کو بتائیں گے۔ کوئی خطرے میں ہو تو لکھیں آپ کہاں "
        "ہیں، کتنے لوگ۔",
    },
    "ack_ask": {
        "en": "Lifeline: message received. Case {case}. Reply with where you are, how many people "
        "and what you need. If water rises, move to the highest safe place.",
        "bn": "Lifeline: বার্তা পেয়েছি। কেস {case}। কোথায় আছেন, কতজন, কী দরকার লিখে পাঠান। পানি "
        "বাড়লে সবচেয়ে উঁচু নিরাপদ জায়গায় যান।",
        "hi": "Lifeline: संदेश मिला। केस {case}। लिखें आप कहाँ हैं, कितने लोग, क्या चाहिए। पानी बढ़े तो "
        "सबसे ऊँची सुरक्षित जगह जाएँ।",
        "ur": "Lifeline: پیغام مل گیا۔ کیس {case}۔ لکھیں آپ کہاں ہیں، کتنے لوگ، کیا چاہیے۔ پانی بڑھے "
        "تو سب سے اونچی محفوظ جگہ جائیں۔",
    },
    "fallback_intro": {
        "en": "Lifeline {case}: your message is queued for a responder. Meanwhile:",
        "bn": "Lifeline {case}: আপনার বার্তা সারিতে আছে। এখন যা করবেন:",
        "hi": "Lifeline {case}: आपका संदेश कतार में है। अभी यह करें:",
        "ur": "Lifeline {case}: آپ کا پیغام قطار میں ہے۔ ابھی یہ کریں:",
    },
    "binary_sms": {
        "en": "Lifeline: we could not read that message (data SMS). Please send plain text: "
        "where you are, how many people, what you need.",
        "bn": "Lifeline: বার্তাটি পড়া যায়নি। লিখে পাঠান: কোথায় আছেন, কতজন, কী দরকার।",
        "hi": "Lifeline: संदेश पढ़ा नहीं जा सका। लिखकर भेजें: आप कहाँ हैं, कितने लोग, क्या चाहिए।",
        "ur": "Lifeline: پیغام پڑھا نہیں جا سکا۔ لکھ کر بھیجیں: آپ کہاں ہیں، کتنے لوگ، کیا چاہیے۔",
    },
    "empty_sms": {
        "en": "Lifeline: your message was empty. Please write where you are, how many people, "
        "and what you need.",
        "bn": "Lifeline: বার্তাটি খালি ছিল। লিখুন: কোথায় আছেন, কতজন, কী দরকার।",
        "hi": "Lifeline: संदेश खाली था। लिखें: आप कहाँ हैं, कितने लोग, क्या चाहिए।",
        "ur": "Lifeline: پیغام خالی تھا۔ لکھیں: آپ کہاں ہیں، کتنے لوگ، کیا چاہیے۔",
    },
    "undecryptable": {
        "en": "Lifeline: we could not read your encrypted message yet; it will be handled as soon "
        "as its key arrives. If it is urgent, send it again: where you are, how many people, "
        "what you need.",
        "bn": "Lifeline: আপনার এনক্রিপ্ট করা বার্তা এখনও পড়া যায়নি। জরুরি হলে আবার লিখুন: কোথায় "
        "আছেন, কতজন, কী দরকার।",
        "hi": "Lifeline: आपका एन्क्रिप्टेड संदेश अभी पढ़ा नहीं जा सका। ज़रूरी हो तो फिर लिखें: आप कहाँ "
        "हैं, कितने लोग, क्या चाहिए।",
        "ur": "Lifeline: آپ کا خفیہ کردہ پیغام ابھی پڑھا نہیں جا سکا۔ ضروری ہو تو دوبارہ لکھیں: آپ "
        "کہاں ہیں، کتنے لوگ، کیا چاہیے۔",
    },
    "partial_sms": {
        "en": "Lifeline {case}: part of your long message did not arrive. If anything is missing, "
        "please send it again in a shorter message.",
        "bn": "Lifeline {case}: আপনার লম্বা বার্তার একটি অংশ আসেনি। দরকার হলে ছোট করে আবার পাঠান।",
        "hi": "Lifeline {case}: आपके लंबे संदेश का एक हिस्सा नहीं आया। ज़रूरत हो तो छोटा करके फिर भेजें।",
        "ur": "Lifeline {case}: آپ کے لمبے پیغام کا ایک حصہ نہیں پہنچا۔ ضرورت ہو تو مختصر کر کے دوبارہ بھیجیں۔",
    },
    "media_error": {
        "en": "Lifeline {case}: {note} Please describe it in text.",
        "bn": "Lifeline {case}: ফাইলটি ব্যবহার করা যায়নি। লিখে জানান।",
        "hi": "Lifeline {case}: फ़ाइल इस्तेमाल नहीं हो सकी। कृपया लिखकर बताएं।",
        "ur": "Lifeline {case}: فائل استعمال نہیں ہو سکی۔ براہ کرم لکھ کر بتائیں۔",
    },
    "audio_cut": {
        "en": "Note: only the first {note} seconds of your voice message were used.",
        "bn": "দ্রষ্টব্য: আপনার ভয়েস বার্তার প্রথম {note} সেকেন্ড শোনা হয়েছে।",
        "hi": "ध्यान दें: आपके वॉइस संदेश के पहले {note} सेकंड ही सुने गए।",
        "ur": "نوٹ: آپ کے صوتی پیغام کے صرف پہلے {note} سیکنڈ سنے گئے۔",
    },
    "dispatch_approved": {
        "en": "Lifeline {case}: rescue approved. Team {team} is being sent to you. Stay where you "
        "are if safe, make yourself visible, keep your phone on.",
        "bn": "Lifeline {case}: উদ্ধার অনুমোদিত। দল {team} আসছে। নিরাপদ হলে এখানেই থাকুন, দৃশ্যমান থাকুন, ফোন চালু রাখুন।",
        "hi": "Lifeline {case}: बचाव मंज़ूर। टीम {team} आ रही है। सुरक्षित हों तो वहीं रहें, दिखाई दें, फ़ोन चालू रखें।",
        "ur": "Lifeline {case}: ریسکیو منظور۔ ٹیم {team} آ رہی ہے۔ محفوظ ہوں تو وہیں رہیں، نظر آئیں، فون آن رکھیں۔",
    },
    "dispatch_approved_waiting": {
        "en": "Lifeline {case}: rescue approved. A team will be assigned to you as soon as one is "
        "free; we will text you. Stay where you are if safe, keep your phone on.",
        "bn": "Lifeline {case}: উদ্ধার অনুমোদিত। কোনো দল খালি হলেই আপনার জন্য পাঠানো হবে, আমরা জানাব। "
        "নিরাপদ হলে এখানেই থাকুন, ফোন চালু রাখুন।",
        "hi": "Lifeline {case}: बचाव मंज़ूर। टीम खाली होते ही आपके लिए भेजी जाएगी, हम बताएँगे। "
        "सुरक्षित हों तो वहीं रहें, फ़ोन चालू रखें।",
        "ur": "Lifeline {case}: ریسکیو منظور۔ ٹیم فارغ ہوتے ہی آپ کے لیے بھیجی جائے گی، ہم بتائیں گے۔ "
        "محفوظ ہوں تو وہیں رہیں، فون آن رکھیں۔",
    },
    "dispatch_rejected": {
        "en": "Lifeline {case}: a team cannot come right now ({note}). We keep your case open. "
        "Reply with any change.",
        "bn": "Lifeline {case}: এখনই দল পাঠানো যাচ্ছে না ({note})। কেস খোলা আছে। পরিবর্তন হলে জানান।",
        "hi": "Lifeline {case}: अभी टीम नहीं आ सकती ({note})। आपका केस खुला है। कोई बदलाव हो तो बताएं।",
        "ur": "Lifeline {case}: ابھی ٹیم نہیں آ سکتی ({note})۔ آپ کا کیس کھلا ہے۔ کوئی تبدیلی ہو تو بتائیں۔",
    },
    "team_assigned": {
        "en": "Lifeline {case}: team {team} is assigned to you.",
        "bn": "Lifeline {case}: দল {team} আপনার জন্য নির্ধারিত।",
        "hi": "Lifeline {case}: टीम {team} आपके लिए तय की गई है।",
        "ur": "Lifeline {case}: ٹیم {team} آپ کے لیے مقرر کی گئی ہے۔",
    },
    "team_arrived": {
        "en": "Lifeline {case}: team {team} has reached your area. Make yourself seen and heard: wave cloth, shout, use a torch.",
        "bn": "Lifeline {case}: দল {team} আপনার এলাকায় পৌঁছেছে। কাপড় নাড়ুন, ডাকুন, টর্চ জ্বালান যাতে দেখতে পায়।",
        "hi": "Lifeline {case}: टीम {team} आपके इलाके में पहुँच गई है। कपड़ा हिलाएँ, आवाज़ दें, टॉर्च जलाएँ।",
        "ur": "Lifeline {case}: ٹیم {team} آپ کے علاقے میں پہنچ گئی ہے۔ کپڑا ہلائیں، آواز دیں، ٹارچ جلائیں۔",
    },
    "resolved": {
        "en": "Lifeline {case}: your case is closed. {note} Text again if you need help.",
        "bn": "Lifeline {case}: আপনার কেস বন্ধ। {note} আবার দরকার হলে লিখুন।",
        "hi": "Lifeline {case}: आपका केस बंद। {note} फिर मदद चाहिए तो लिखें।",
        "ur": "Lifeline {case}: آپ کا کیس بند۔ {note} دوبارہ مدد چاہیے تو لکھیں۔",
    },
    "relay": {
        "en": "Lifeline {case} responder: {note}",
        "bn": "Lifeline {case} উদ্ধারকর্মী: {note}",
        "hi": "Lifeline {case} बचावकर्मी: {note}",
        "ur": "Lifeline {case} امدادی کارکن: {note}",
    },
    "status_received": {
        "en": "Lifeline {case}: your message is with the responders; we will text you.",
        "bn": "Lifeline {case}: আপনার বার্তা উদ্ধারকারীদের কাছে আছে; আমরা আপনাকে জানাব।",
        "hi": "Lifeline {case}: आपका संदेश राहत टीम के पास है; हम आपको बताएँगे।",
        "ur": "Lifeline {case}: آپ کا پیغام امدادی ٹیم کے پاس ہے؛ ہم آپ کو بتائیں گے۔",
    },
    "status_requested": {
        "en": "Lifeline {case}: a rescue team has been requested and waits for a coordinator's "
        "approval.",
        "bn": "Lifeline {case}: উদ্ধার দল চাওয়া হয়েছে, সমন্বয়কারীর অনুমোদনের অপেক্ষায়।",
        "hi": "Lifeline {case}: बचाव दल माँगा गया है, समन्वयक की मंज़ूरी का इंतज़ार है।",
        "ur": "Lifeline {case}: امدادی ٹیم مانگی گئی ہے، کوآرڈینیٹر کی منظوری کا انتظار ہے۔",
    },
    "status_approved": {
        "en": "Lifeline {case}: rescue approved; a team will be sent as soon as one is free.",
        "bn": "Lifeline {case}: উদ্ধার অনুমোদিত; দল খালি হলেই পাঠানো হবে।",
        "hi": "Lifeline {case}: बचाव मंज़ूर; टीम खाली होते ही भेजी जाएगी।",
        "ur": "Lifeline {case}: امداد منظور؛ ٹیم فارغ ہوتے ہی بھیجی جائے گی۔",
    },
    "status_team": {
        "en": "Lifeline {case}: team {team} is on the way to you.",
        "bn": "Lifeline {case}: দল {team} আপনার দিকে আসছে।",
        "hi": "Lifeline {case}: टीम {team} आपकी ओर आ रही है।",
        "ur": "Lifeline {case}: ٹیم {team} آپ کی طرف آ رہی ہے۔",
    },
    "status_arrived": {
        "en": "Lifeline {case}: team {team} has reached your area.",
        "bn": "Lifeline {case}: দল {team} আপনার এলাকায় পৌঁছেছে।",
        "hi": "Lifeline {case}: टीम {team} आपके इलाके में पहुँच गई है।",
        "ur": "Lifeline {case}: ٹیم {team} آپ کے علاقے میں پہنچ گئی ہے۔",
    },
    "no_case": {
        "en": "Lifeline: you have no open case. Text us where you are and what you need.",
        "bn": "Lifeline: আপনার কোনো খোলা কেস নেই। কোথায় আছেন ও কী দরকার লিখুন।",
        "hi": "Lifeline: आपका कोई खुला केस नहीं है। आप कहाँ हैं और क्या चाहिए, लिखें।",
        "ur": "Lifeline: آپ کا کوئی کھلا کیس نہیں۔ آپ کہاں ہیں اور کیا چاہیے، لکھیں۔",
    },
    "help": {
        "en": "Lifeline: text where you are, how many people, what you need. "
        "JOIN <area> for alerts, STOP to end alerts, STATUS for your case.",
        "bn": "Lifeline: কোথায় আছেন, কতজন, কী দরকার লিখুন। সতর্কবার্তা: JOIN <এলাকা>, বন্ধ: STOP, কেস: STATUS",
        "hi": "Lifeline: आप कहाँ हैं, कितने लोग, क्या चाहिए लिखें। अलर्ट: JOIN <इलाका>, बंद: STOP, केस: STATUS",
        "ur": "Lifeline: آپ کہاں ہیں، کتنے لوگ، کیا چاہیے لکھیں۔ الرٹ: JOIN <علاقہ>، بند: STOP، کیس: STATUS",
    },
    "joined": {
        "en": "Lifeline: you will get alerts for {area}. Text STOP to end them.",
        "bn": "Lifeline: {area} এলাকার সতর্কবার্তা পাবেন। বন্ধ করতে STOP লিখুন।",
        "hi": "Lifeline: आपको {area} के अलर्ट मिलेंगे। बंद करने के लिए STOP लिखें।",
        "ur": "Lifeline: آپ کو {area} کے الرٹ ملیں گے۔ بند کرنے کے لیے STOP لکھیں۔",
    },
    "stopped": {
        "en": "Lifeline: alerts stopped. You can still text us for help at any time.",
        "bn": "Lifeline: সতর্কবার্তা বন্ধ। সাহায্যের জন্য যেকোনো সময় লিখতে পারেন।",
        "hi": "Lifeline: अलर्ट बंद। मदद के लिए कभी भी लिख सकते हैं।",
        "ur": "Lifeline: الرٹ بند۔ مدد کے لیے کسی بھی وقت لکھ سکتے ہیں۔",
    },
    "generic_safety": {
        "en": "Move to the highest safe place. Avoid flood water and fallen wires. "
        "Drink only boiled or treated water.",
        "bn": "সবচেয়ে উঁচু নিরাপদ জায়গায় যান। বন্যার পানি ও ছেঁড়া তার এড়িয়ে চলুন। ফোটানো পানি পান করুন।",
        "hi": "सबसे ऊँची सुरक्षित जगह जाएँ। बाढ़ के पानी और गिरे तारों से दूर रहें। उबला पानी ही पिएँ।",
        "ur": "سب سے اونچی محفوظ جگہ جائیں۔ سیلابی پانی اور گرے تاروں سے دور رہیں۔ صرف ابلا پانی پئیں۔",
    },
}


_SENTENCE_END = {"en": ".", "bn": "।", "hi": "।", "ur": "۔"}
_ENDS_SENTENCE = tuple(".!?…।॥۔؟\"'”’")


def ack_key(priority: Priority, *, bare_plea: bool) -> str:
    """The first reply's template: only a life threat or a HIGH need is told help is coming."""
    if bare_plea:
        return "ack_ask"  # a bare "HELP" says nothing about where or who: ask for it
    return "ack" if priority <= Priority.HIGH else "ack_info"


def finish_note(key: str, lang: str, note: str) -> str:
    """A staff note the template continues after ("{note} Text again…") ends its sentence."""
    note = note.strip()
    template = TEXTS[key].get(lang) or TEXTS[key]["en"]
    if not note or "{note} " not in template or note.endswith(_ENDS_SENTENCE):
        return note
    return note + _SENTENCE_END.get(lang, ".")


def say(key: str, lang: str, **values: object) -> str:
    table = TEXTS[key]
    template = table.get(lang) or table["en"]
    return template.format(**{k: str(v) for k, v in values.items()})
