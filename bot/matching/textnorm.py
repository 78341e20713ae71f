"""Language knowledge for matching: normalising, tokenising, stemming, transliterating, question cues, years.

This module owns everything the matcher knows about English and Russian as languages, and nothing about
particular facts: normalisation (case, ё; punctuation and typographic quotes separate tokens), tokens, a
light stemmer for each language (so "meetings"/"meeting" and "Пекине"/"Пекин" meet), Cyrillic→Latin
transliteration for typed names, stopwords, generic filler words, a small bilingual glossary of news
vocabulary, the question words that say what kind of fact is wanted (when, where, how much, who said ...),
list requests, and years written as numbers or relative to today ("last year", "в прошлом году").
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Sequence
from functools import lru_cache
from itertools import pairwise
from typing import TypeVar

from rapidfuzz.distance import Levenshtein

_V = TypeVar("_V")

# --- normalisation and tokens --------------------------------------------------------------------------------

# A token is a number (with decimals, or a suffix as in 75th, 200bn) or a run of letters and digits (g20).
# Punctuation, typographic quotes and dashes separate tokens; a possessive "'s" leaves a lone "s", which is
# dropped with every other single letter ("<b>", "U.S." initials), so "Xi's" and "Xi" read the same.
TOKEN_RE = re.compile(r"\d+(?:[.,]\d+)+\w*|\w+")
_NUMBER = re.compile(r"(\d+(?:[.,]\d+)*)([^\W\d_]*)")
_NUMBER_SUFFIXES = frozenset(
    {"", "st", "nd", "rd", "th", "s", "k", "m", "bn", "b", "mln", "bln", "billion", "million", "й", "го", "е", "х"}
)
_CYRILLIC = re.compile(r"[а-я]")


def words(text: str) -> frozenset[str]:
    """The whitespace-separated words of a table written as text."""
    return frozenset(text.split())


# Word-forming prefixes stay joined: "re-election" is not an "election", "co-operation" is "cooperation".
_PREFIX_HYPHEN = re.compile(
    r"\b(re|non|anti|co|pre|post|self|semi|multi|counter|ex)[-\u2010\u2011](?=\w)|(?<=\w)[-\u2010\u2011](?=(?:elect|designate)\b)",
    re.I,
)
_CURRENCY = str.maketrans({"$": " dollar ", "€": " euro ", "£": " pound ", "¥": " yuan ", "₽": " ruble "})
_CURRENCY_SIGNS = frozenset("$€£¥₽")


def normalise(text: str) -> str:
    """Case-folded, ё read as е, currency signs as words ($200 -> dollar 200), prefixed words joined."""
    return _prepare(text.casefold())


def _prepare(text: str) -> str:
    text = text.replace("ё", "е").replace("Ё", "Е")
    if "-" in text or "\u2010" in text or "\u2011" in text:
        text = _PREFIX_HYPHEN.sub(_join, text)
    if not _CURRENCY_SIGNS.isdisjoint(text):
        text = text.translate(_CURRENCY)
    return text


def _join(match: re.Match[str]) -> str:
    return match.group(1) or ""


def split_prefixes(text: str) -> str:
    """The same text with prefixed words split ("non-alliance" -> "non alliance"), for alias variants."""
    return _PREFIX_HYPHEN.sub(lambda m: m.group(1) + " " if m.group(1) else m.group(0), text)


def tokenise(text: str) -> list[str]:
    """Case-folded word and number tokens of `text`, single letters dropped."""
    return [t for t in TOKEN_RE.findall(normalise(text)) if len(t) > 1 or t.isdigit()]


def raw_tokens(text: str) -> list[str]:
    """Tokens with their original case (the same tokens as `tokenise`, before case folding)."""
    return [t for t in TOKEN_RE.findall(_prepare(text)) if len(t) > 1 or t.isdigit()]


def is_cyrillic(token: str) -> bool:
    return _CYRILLIC.search(token) is not None


def parse_number(token: str) -> float | None:
    """75th -> 75, 200bn -> 200, 2,5 -> 2.5, 1,000 -> 1000; None for words (g20) and other suffixes."""
    match = _NUMBER.fullmatch(token)
    if not match or match.group(2) not in _NUMBER_SUFFIXES:
        return None
    digits = match.group(1)
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+", digits):
        digits = digits.replace(",", "")
    try:
        return float(digits.replace(",", "."))
    except ValueError:
        return None


def year_of(token: str) -> int | None:
    """A four-digit year 1900-2099 written as a token (2023, 2020s is not a year)."""
    if len(token) == 4 and token.isdigit() and token[:2] in ("19", "20"):
        return int(token)
    return None


# --- stemming ------------------------------------------------------------------------------------------------

_EN_IRREGULAR = {
    "said": "say", "says": "say", "saying": "say", "met": "meet", "meets": "meet", "told": "tell", "tells": "tell",
    "spoke": "speak", "spoken": "speak", "wrote": "writ", "written": "writ", "went": "go", "gone": "go",
    "goes": "go", "took": "take", "taken": "take", "bought": "buy", "sent": "send", "made": "make",
    "news": "news", "was": "was", "has": "has", "does": "does", "is": "is", "us": "us", "its": "its",
    "this": "this", "his": "his", "yes": "yes", "thus": "thus", "times": "time", "less": "less",
    "business": "business",
}  # fmt: skip
_VOWELS = frozenset("aeiouy")
_RU_REFLEXIVE = ("ся", "сь")
_RU_ENDINGS = words(
    """
    иями ями ами иях иям ием ях ах ией ей ой ый ий ая яя ое ее ие ые ого его ому ему ими ыми ую юю ом ем ам ям
    им ым их ых ов ев ию ья ье ьи ью ия ии ала али ало ил ила или ило ел ела ели ыл ыла ыли ал ать ять
    ить еть ет ит ут ют ат ят ешь ишь ете ите ла ли ло а я о е у ю ы и ь й
    """
)
# By length, longest first: a word's ending of each length is looked up, not every ending tried.
_RU_ENDINGS_BY_LENGTH = tuple(
    (n, frozenset(e for e in _RU_ENDINGS if len(e) == n)) for n in sorted({len(e) for e in _RU_ENDINGS}, reverse=True)
)


# British spellings read as American ones: organisation/organization, neighbourly/neighborly.
_BRITISH = (
    (re.compile(r"(?<=\w{4})is(ation|ations|e|ed|es|ing)$"), r"iz\1"),
    (re.compile(r"(?<=\w{3})our(s|ly|ed|ing|hood|ite|able)?$"), r"or\1"),
)


def _stem_en(word: str) -> str:
    if word in _EN_IRREGULAR:
        return _EN_IRREGULAR[word]
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ness") and len(word) > 7:
        word = word[:-4]  # willingness -> willing -> will
        if word.endswith("i"):
            word = word[:-1] + "y"  # neighbourliness -> neighbourly, the adjective's own stem
    for pattern, replacement in _BRITISH:
        word = pattern.sub(replacement, word)
    if word.endswith(("tion", "sion", "tions", "sions")) and len(word) >= 7:
        word = word[: word.rindex("ion")]  # election/elected, communication/communicate meet
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("sses"):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    for suffix, keep in (("ing", 3), ("ed", 3)):
        if word.endswith(suffix) and len(word) - len(suffix) >= keep and _VOWELS & set(word[: -len(suffix)]):
            word = word[: -len(suffix)]
            if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "lsz":
                word = word[:-1]  # running -> run
            break
    if word.endswith("e") and len(word) > 4:
        word = word[:-1]
    return word


def _stem_ru(word: str) -> str:
    if len(word) <= 3:
        return word
    for ending in _RU_REFLEXIVE:
        if word.endswith(ending) and len(word) - 2 >= 4:
            word = word[:-2]
            break
    for n, endings in _RU_ENDINGS_BY_LENGTH:
        if len(word) - n >= 3 and word[-n:] in endings:
            return word[:-n]
    return word


@lru_cache(maxsize=262_144)
def stem(token: str) -> str:
    """A light stem of a case-folded token: English or Russian suffixes stripped; numbers unchanged."""
    if not token or token[0].isdigit():
        return token
    return _stem_ru(token) if is_cyrillic(token) else _stem_en(token)


# --- typos ---------------------------------------------------------------------------------------------------

_KEYBOARD_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm", "йцукенгшщзхъ", "фывапролджэ", "ячсмитьбю")
_NEAR: dict[str, set[str]] = {}
for _upper, _lower in pairwise(_KEYBOARD_ROWS):
    if _upper[0].isascii() != _lower[0].isascii():
        continue
    for _i, _ch in enumerate(_upper):
        _NEAR.setdefault(_ch, set()).update(_upper[max(0, _i - 1) : _i + 2], _lower[max(0, _i - 1) : _i + 2])
        for _below in _lower[max(0, _i - 1) : _i + 2]:
            _NEAR.setdefault(_below, set()).add(_ch)
for _row in _KEYBOARD_ROWS:
    for _i, _ch in enumerate(_row):
        _NEAR.setdefault(_ch, set()).update(_row[max(0, _i - 1) : _i + 2])
_SOUNDS_ALIKE = [set(g) for g in ("aeiouy", "ck", "kq", "cs", "sz", "gj", "vw", "fv", "аоеиуыэюяё", "сз", "тд", "бп")]


def _slip(a: str, b: str) -> bool:
    """Could `b` have been typed for `a`: a neighbouring key, or a letter that sounds alike (vowels, c/k)?"""
    return b in _NEAR.get(a, ()) or any(a in g and b in g for g in _SOUNDS_ALIKE)


def plausible_typo(typed: str, word: str) -> bool:
    """Whether `typed` reads as a slip for `word`: letters dropped, doubled or swapped, or a neighbouring
    key or similar-sounding letter substituted. A substitution of an unrelated letter ("tanks" for
    "talks") is more likely a different word."""
    for op in Levenshtein.editops(typed, word):
        tag, i, j = op.tag, op.src_pos, op.dest_pos
        if tag == "replace" and not _slip(typed[i], word[j]):
            # An OSA transposition shows as two replacements of swapped letters: still a slip.
            swapped = (
                i + 1 < len(typed) and j + 1 < len(word) and typed[i] == word[j + 1] and typed[i + 1] == word[j]
            ) or (i > 0 and j > 0 and typed[i] == word[j - 1] and typed[i - 1] == word[j])
            if not swapped:
                return False
    return True


def no_stray_letters(typed: str, word: str) -> bool:
    """Whether every letter `typed` has beyond `word` doubles its neighbour ("whenn" for "when"): otherwise the
    longer word is likely another word ("wheat" is not "what")."""
    for op in Levenshtein.editops(typed, word):
        tag, i = op.tag, op.src_pos
        if tag == "delete" and not (
            (i > 0 and typed[i - 1] == typed[i]) or (i + 1 < len(typed) and typed[i + 1] == typed[i])
        ):
            return False
    return True


# --- transliteration -----------------------------------------------------------------------------------------

_CYR_TO_LAT = {
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ж": "zh", "з": "z", "и": "i", "й": "y",
    "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r", "с": "s", "т": "t", "у": "u",
    "ф": "f", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh", "щ": "shch", "ъ": "", "ы": "y", "ь": "", "э": "e",
    "ю": "yu", "я": "ya",
}  # fmt: skip


# Other common ways of typing Russian names in Latin letters (Цзиньпин: tszinpin, czinpin, tzinpin).
_CYR_VARIANTS = (
    {"ц": "c", "х": "h", "ж": "j", "й": "i", "ю": "iu", "я": "ia", "щ": "sch"},
    {"ц": "tz", "х": "h", "й": "i", "ы": "i"},
)


_TO_LATIN = str.maketrans(_CYR_TO_LAT)
_TO_LATIN_VARIANTS = tuple(str.maketrans({**_CYR_TO_LAT, **v}) for v in _CYR_VARIANTS)


def transliterate(token: str) -> str:
    """Cyrillic letters to Latin (Путин -> putin, Казань -> kazan); other characters unchanged."""
    return token.translate(_TO_LATIN)


def transliterations(text: str) -> set[str]:
    """The usual Latin spellings of a Cyrillic text (the standard one and common variants)."""
    return {text.translate(_TO_LATIN), *(text.translate(table) for table in _TO_LATIN_VARIANTS)}


# --- stopwords and filler ------------------------------------------------------------------------------------

STOPWORDS = words(
    """
    didn doesn don isn wasn weren aren hasn haven hadn couldn wouldn shouldn won ain ll ve re
    a an the of in on at to for from by with about and or but nor is are was were be been being am do does did
    done doing have has had having i me my mine we our ours you your yours he him his she her hers it its they
    them their theirs this that these those there here what which who whom whose why how can could would should
    will shall may might must please tell any some much many more most very also just than then so as if into
    onto between both each other such only own same too not no yes s t let lets like get got ever even again
    still anything something everything nothing whether per via upon against during before after over under up
    down out off all every list show give find know want need does did whats whos wheres hows im ive id youre
    thats и в во на с со о об обо по к ко у за из от до для про при а но или ли же бы не ни что кто как это этот
    эта эти этом эту этого тот та те то был была были было быть есть его ее их он она они мы вы я мне нам вам им
    меня нас вас ему ей свой своей своих свои между там тут так также еще уже очень какой какая какие каким
    какую каком какого какое ли расскажи скажи пожалуйста мне все всех всё весь вся список перечисли покажи чем
    чём ком кого кому где когда куда сколько почему зачем ли разве после перед через без над под около среди
    """
)

# Generic words people add to questions; they weigh little whether or not a fact contains them.
COMMON_WORDS = words(
    """
    happen happened happening event events thing things info information detail details latest recent recently
    today now really exactly actually kindly learn explain describe summary summarise summarize briefly brief
    quick quickly question questions answer bot hey hello hi thanks thank ok okay go going come came take make
    look see talk speak mention mentioned mentions call called regarding concerning relation relations
    relationship weather good great big small best worst long short high low important main major key role part
    play played use used way ways kind sort type time times day days date year years month months week weeks ago
    new old first last next previous current early earlier later late soon two three both countries country
    nation nations state states leader leaders president head official officials government side sides people
    person man men woman world one ones another say said tell told put set keep kept give given gave show showed
    shown think thought feel felt seem seemed become became want wanted try tried work worked help helped turn
    start started begin began end ended change changed move moved bring brought hold held stand stood run ran
    pay paid meet hear heard leave left lead led live lived believe ask asked need needed mean meant allow
    happen include included continue continued follow followed create created open opened read write wrote reply
    replied respond responded react reacted discuss discussed agree agreed share shared plan planned expect
    expected offer offered reach reached remain remained suggest suggested raise raised report reported decide
    decided pass passed consider considered appear appeared serve served send sent build built stay fall fell
    cut win won lose lost add added grow grew spend spent carry carried develop developed anybody anyone someone
    somebody everyone everybody nobody something thing stuff matter case fact facts point number numbers level
    group problem problems issue issues place places reason reasons example whole full free sure true false
    real right wrong able certain clear different similar special general public private local whole several
    various particular possible likely simply probably maybe perhaps around away back far well better little
    less least own else ever never always often sometimes usually already yet again once later together instead
    however although though because since until while exact exactly approximately approx roughly overall total
    altogether specifically especially according accordingly promise promised pledge pledged vow vowed weekday
    announce announced announcement unveil unveiled proclaim proclaimed outlet outlets media newspaper
    newspapers publication source sources
    weekdays stay stayed stays able ever since far way anything kind respect regard regarding order
    произошло случилось было событие события информация подробно новости
    сейчас сегодня год года году лет страна страны стран лидер лидеры президент президенты сторона стороны
    человек мир два две оба обе один одна составил составила составило составили составляет составлял стал стала
    стало стали является являлся тогда тоже сказать знать узнать хочу интересно такое такой такая делал делали
    сделал сделали обещал обещала обещали какого каком какой каких which
    """
)

COMMON_STEMS = frozenset(stem(w) for w in COMMON_WORDS)

# Units a figure is given in: a question asking "in barrels" is not answered by a fact without barrels.
MEASURE_UNITS = frozenset(
    stem(w)
    for w in words(
        "dollar dollars usd euro euros yuan renminbi rmb ruble rubles rouble roubles pound pounds barrel barrels "
        "tonne tonnes ton tons percent kilometre kilometres kilometer kilometers mile miles metre meters"
    )
)

MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
MONTH_STEMS = frozenset(stem(m.casefold()) for m in MONTHS)

# --- bilingual glossary and synonyms (generic news vocabulary, not facts) -----------------------------------

_RU_GLOSSARY_WORDS = {
    "встретились": "met", "встретился": "met", "встретятся": "meet", "встретиться": "meet", "саммит": "summit",
    "визит": "visit", "визиты": "visit", "посетил": "visited", "посетит": "visit", "посещение": "visit",
    "приедет": "visit", "приедут": "visit", "приехать": "visit", "поездка": "trip", "приезжал": "visited",
    "приехал": "visited", "ездил": "visited", "переговоры": "talks",
    "торговля": "trade", "товарооборот": "trade", "торговый": "trade", "объем": "volume", "рекорд": "record",
    "миллиард": "billion", "миллиардов": "billion", "доллар": "dollar", "долларов": "dollars",
    "послание": "message", "письмо": "letter", "телеграмма": "telegram", "поздравление": "greetings",
    "писал": "wrote", "написал": "wrote", "пишет": "writes",
    "поздравил": "congratulated", "новогоднее": "new year", "новогодний": "new year", "новый": "new",
    "сотрудничество": "cooperation", "отношения": "relations", "партнерство": "partnership",
    "дружба": "friendship", "годовщина": "anniversary", "юбилей": "anniversary",
    "энергетика": "energy", "нефть": "oil", "газ": "gas", "космос": "space", "война": "war", "победа": "victory",
    "справедливость": "justice", "доверие": "trust", "лидер": "leader", "президент": "president",
    "премьер": "prime minister", "посол": "ambassador", "министерство": "ministry", "сказал": "said",
    "заявил": "said", "заявление": "statement", "цитата": "quote", "слова": "words", "пожелал": "wished",
    "олимпиада": "olympics", "санкции": "sanctions", "пошлины": "tariffs", "китай": "china", "россия": "russia",
    "сша": "usa", "америка": "america", "украина": "ukraine", "япония": "japan", "германия": "germany",
    "индия": "india", "франция": "france", "европа": "europe", "нейтралитет": "neutrality", "оружие": "weapons",
    "эпоха": "era", "срок": "term", "переизбрание": "re-election", "выборы": "election", "выборов": "election",
    "выборах": "election", "технологии": "technology", "дипломатический": "diplomatic",
    "наука": "science", "транспорт": "transport", "экономика": "economy", "будущее": "future",
    "подтвердил": "confirmed", "планирует": "plans", "планы": "plans", "путь": "path", "союз": "alliance",
    "обменялись": "exchanged", "обмен": "exchange", "обменивались": "exchanged", "конец": "end", "конце": "end",
    "остановить": "end", "прекратить": "end", "закончить": "end",
    "начало": "beginning", "начале": "beginning", "середина": "middle", "середине": "middle",
    "январь": "january", "января": "january", "январе": "january", "февраль": "february", "февраля": "february",
    "феврале": "february", "март": "march", "марта": "march", "марте": "march", "апрель": "april",
    "апреля": "april", "апреле": "april", "мая": "may", "мае": "may", "июнь": "june", "июня": "june",
    "июне": "june", "июль": "july", "июля": "july", "июле": "july", "август": "august", "августа": "august",
    "августе": "august", "сентябрь": "september", "сентября": "september", "сентябре": "september",
    "октябрь": "october", "октября": "october", "октябре": "october", "ноябрь": "november", "ноября": "november",
    "ноябре": "november", "декабрь": "december", "декабря": "december", "декабре": "december",
    "годовщину": "anniversary", "ценности": "values", "сферы": "fields", "сферах": "fields", "области": "fields",
    "областях": "fields", "контакты": "contacts", "связь": "communication", "общение": "communication",
    "третий": "third", "стратегический": "strategic", "выбор": "choice", "дорогой": "dear", "уровень": "level",
    "беспрецедентный": "unprecedented", "союзник": "ally", "союзники": "allies", "противостояние": "confrontation",
    "двигатели": "engines", "поставки": "supplies", "компании": "companies", "поддержка": "support",
    "баррель": "barrels", "баррелей": "barrels", "барреля": "barrels", "рубль": "rubles", "рублей": "rubles",
    "юань": "yuan", "юаней": "yuan", "евро": "euro", "тонна": "tonnes", "тонн": "tonnes", "процент": "percent",
    "процентов": "percent", "сохранило": "maintained", "сохранить": "maintain", "сохранили": "maintained",
    "динамику": "momentum", "динамика": "momentum", "развития": "development", "развитие": "development",
}  # fmt: skip
_EN_SYNONYMS = {
    "trip": "visit", "travel": "visit", "traveled": "visited", "travelled": "visited", "summit": "meeting",
    "talks": "meeting", "commerce": "trade", "turnover": "trade", "greeting": "greetings", "congratulate": "greetings",
    "congratulations": "greetings", "remark": "said", "remarks": "said", "comment": "said", "comments": "said",
    "stated": "said", "declared": "said", "claimed": "said", "wish": "wished", "wishes": "wished",
    "mankind": "humankind", "humanity": "humankind", "areas": "fields", "area": "field", "spheres": "fields",
    "sectors": "fields", "domains": "fields", "mark": "marked", "celebrate": "marked", "celebrated": "marked",
    "commemorate": "marked", "buying": "purchases", "buy": "purchases", "bought": "purchases",
    "purchase": "purchases", "contact": "contacts", "ties": "relations", "relationship": "relations",
    "fridge": "refrigeration", "fridges": "refrigeration", "refrigerator": "refrigeration",
    "refrigerators": "refrigeration", "spokesperson": "spokesman", "spokeswoman": "spokesman",
    "celebration": "marked", "celebrations": "marked", "defeat": "victory", "defeated": "victory",
    "coming": "visit", "attend": "visit", "attended": "visited", "attending": "visit", "card": "greetings",
    "cards": "greetings",
    "cable": "message", "cables": "message", "invade": "invasion", "invaded": "invasion", "invading": "invasion",
    "stop": "end", "halt": "end", "finish": "end", "swap": "exchange", "swapped": "exchanged",
    "swapping": "exchange", "biggest": "largest", "arrive": "visit", "arrived": "visited", "arrival": "visit",
    "usd": "dollar",
}  # fmt: skip


def _stem_phrase(phrase: str) -> tuple[str, ...]:
    return tuple(stem(t) for t in tokenise(phrase))


# Looked up by word form first, then by stem: stems merge some words ("выборы" elections, "выбор" choice).
RU_GLOSSARY_FORMS: dict[str, tuple[str, ...]] = {
    k.replace("ё", "е"): _stem_phrase(v) for k, v in _RU_GLOSSARY_WORDS.items()
}
RU_GLOSSARY: dict[str, tuple[str, ...]] = {stem(k): v for k, v in RU_GLOSSARY_FORMS.items()}


def gloss(word: str) -> tuple[str, ...] | None:
    """The English stems a case-folded Russian news word stands for, if the glossary has it."""
    word = word.replace("ё", "е")
    return RU_GLOSSARY_FORMS.get(word) or RU_GLOSSARY.get(stem(word))


EN_SYNONYMS: dict[str, tuple[str, ...]] = {stem(k): _stem_phrase(v) for k, v in _EN_SYNONYMS.items()}

# --- what kind of question -----------------------------------------------------------------------------------

# Cue -> the fact kinds that answer it (kinds are the schema's, see bot.knowledge.model.KINDS).
CUE_KINDS: dict[str, frozenset[str]] = {
    "when": frozenset({"exchange", "meeting", "anniversary"}),
    "where": frozenset({"meeting"}),
    "amount": frozenset({"trade"}),
    "count": frozenset({"meeting"}),
    "say": frozenset({"quote", "statement"}),
    "quote": frozenset({"quote", "statement"}),
    "age": frozenset({"anniversary"}),
}
_CUE_PHRASES = {
    "when": "when; what year; which year; what date; which date; what day; which day; what month; which month; "
    "in what year; since when; "
    "когда; в каком году; какого числа; в какой день; в каком месяце",
    "where": "where; which city; what city; which place; what place; which country; where else; "
    "где; куда; в каком городе; в какой стране",
    "amount": "how much; how big; how large; how high; what amount; amount; volume; worth; "
    "сколько; какой объем; на сколько",
    "count": "how many times; how often; how many meetings; сколько раз; как часто",
    "age": "how old; сколько лет",
    # Asking how to do something: facts about events never answer it.
    "howto": "how do i; how can i; how to; how should i; how do you; how does one; как мне; как можно; как научиться",
    "who": "who; whom; кто; кого; кому",
    # (asking for the source: every answer gives it)
    "filler": "tell me; tell us; can you tell; could you tell; скажи мне; расскажи мне; which outlet; what outlet; "
    "which media; which newspaper; which news agency; who reported; what source; which source; according to whom; "
    "кто сообщил; какое издание; какие сми; "
    # (asking for facts: every answer is one)
    "fact; facts; info; information; details; факт; факты; информация",
    # Verbs: "what did Putin say" asks for Putin's own words.
    "say": "say; said; says; saying; tell; told; write; wrote; written; speak; spoke; stated; declare; declared; "
    "mention; mentioned; describe; described; describes; sum up; sums up; summed up; сказал; сказала; сказали; "
    "говорил; говорила; заявил; заявила; заявили; написал; написали; пожелал",
    # Nouns: "Putin's remarks" may be what someone else answered.
    "quote": "quote; quotes; quoted; words; remark; remarks; comment; comments; statement; statements; цитата; "
    "цитаты; цитату; слова; высказывание; высказывания; заявление; заявления",
}
# The stemmed token sequences of each cue, longest first, so "how many times" wins over "how much".
CUE_PATTERNS: tuple[tuple[tuple[str, ...], str], ...] = tuple(
    sorted(
        {(_stem_phrase(p), cue) for cue, text in _CUE_PHRASES.items() for p in text.split(";") if p.strip()},
        key=lambda item: (-len(item[0]), item[1]),
    )
)

# Nouns naming a kind of fact: they are answered by a fact of that kind even if the fact never uses the word.
_KIND_NOUNS = {
    "meeting": "meeting meetings visit visits summit summits talks trip trips встреча встречи визит визиты",
    "quote": "quote quotes quotation quotations words цитата цитаты слова высказывание высказывания",
    "statement": "statement statements remarks заявление заявления",
    "trade": "trade торговля товарооборот",
    "anniversary": "anniversary anniversaries jubilee годовщина годовщины юбилей юбилеи",
    "exchange": "exchange exchanges greetings messages message letter letters поздравление поздравления послание "
    "послания обмен письмо",
}
KIND_NOUNS: dict[str, frozenset[str]] = {}
for _kind, _words in _KIND_NOUNS.items():
    for _word in _words.split():
        _kinds = {_kind} | ({"quote", "statement"} if _kind in ("quote", "statement") else set())
        KIND_NOUNS[stem(_word)] = frozenset(_kinds) | KIND_NOUNS.get(stem(_word), frozenset())

QUESTION_WORDS = ("what", "when", "where", "which", "who", "whom", "whose", "why", "how")
# What an unknown three-letter word may be a slip for: a question word ("wen") or "year" ("new yer", "last yer").
SHORT_SLIP_TARGETS = (*QUESTION_WORDS, "year")
# Little words of five letters or more, for slips in them ("betwen", "abuot"): one slip away from one of these, an
# unknown word is that word, not a subject the knowledge lacks. (Not the generic words: "tanks" is not "thanks".)
FILLER_SPELLINGS = tuple(sorted(w for w in STOPWORDS if len(w) >= 5 and w.isascii()))
# Single words of the cue phrases, for typos in them ("ammount", "qoute").
CUE_SPELLINGS = tuple(sorted({w for t in _CUE_PHRASES.values() for w in tokenise(t.replace(";", " ")) if len(w) >= 4}))
# "at the end of 2022", "late 2022", "в конце 2022": the date itself must be in that year.
STRICT_YEAR_BEFORE = frozenset(stem(w) for w in words("end late early beginning конце конец начале начало"))
# "plans for 2025", "looking ahead to 2025", "планы на 2025 год": said before that year, about it.
PROSPECTIVE_BEFORE = frozenset(stem(w) for w in words("for ahead until на"))

# Asking for several facts at once: explicit words, or a plural kind noun ("meetings", "quotes by Putin").
LIST_WORDS = frozenset(stem(w) for w in words("all list every everything все всех список перечисли какие"))
PLURAL_LIST_NOUNS = words(
    """
    meetings summits trips visits quotes quotations statements anniversaries цитаты визиты встречи высказывания
    заявления
    """
)

# "New Year" (the greetings are sent in late December for the following year).
NEW_YEAR_PATTERNS: tuple[tuple[str, ...], ...] = (
    _stem_phrase("new year"),
    _stem_phrase("new years"),
    (stem("новогодний"),),
    (stem("новогоднее"),),
    (stem("новогодние"),),
    _stem_phrase("новый год"),
    _stem_phrase("новым годом"),
)
NEW_YEAR_FIRST = frozenset({p[0] for p in NEW_YEAR_PATTERNS} | {stem("новый")})


# The noun phrases a year can follow ("New Year 2024", "с Новым годом 2024"), and "Новый" of "Новый 2024 год".
_NAMED_NEW_YEAR = (*(p for p in NEW_YEAR_PATTERNS if len(p) > 1), (stem("новый"),))


def holiday_year_positions(stems: list[str]) -> list[int]:
    """Positions of years that name a New Year rather than a period, written right after it: "New Year 2024",
    "на Новый 2022 год" (greeted at the end of the year before). Further off ("New Year exchange 2023") the year
    is as often the one the greetings were sent in, so it stays a period."""
    found = []
    for i, s in enumerate(stems):
        if s in NEW_YEAR_FIRST:
            for pattern in _NAMED_NEW_YEAR:
                end = i + len(pattern)
                if end < len(stems) and tuple(stems[i:end]) == pattern and year_of(stems[end]):
                    found.append(end)
                    break
    return found


# --- relative years ------------------------------------------------------------------------------------------

_RELATIVE_YEARS = {
    -1: "last year; previous year; the year before; прошлый год; прошлом году; прошлого года; предыдущем году",
    -2: "year before last; the year before last; позапрошлый год; позапрошлом году; позапрошлого года",
    0: "this year; current year; этот год; этом году; этого года; текущем году; текущего года; нынешнем году",
    1: "next year; coming year; following year; следующий год; следующем году; следующего года; будущем году",
}
RELATIVE_YEAR_PATTERNS: tuple[tuple[tuple[str, ...], int], ...] = tuple(
    sorted(
        ((_stem_phrase(p), offset) for offset, text in _RELATIVE_YEARS.items() for p in text.split(";") if p.strip()),
        key=lambda item: -len(item[0]),
    )
)


def by_first(patterns: Sequence[tuple[tuple[str, ...], _V]]) -> dict[str, list[tuple[tuple[str, ...], _V]]]:
    """Patterns grouped by their first stem (longest first), so a scan tries only those that can match."""
    grouped: dict[str, list[tuple[tuple[str, ...], _V]]] = {}
    for pattern, value in patterns:
        grouped.setdefault(pattern[0], []).append((pattern, value))
    return grouped


CUES_BY_FIRST = by_first(CUE_PATTERNS)
CUE_WORDS = frozenset(w for pattern, _ in CUE_PATTERNS for w in pattern)
_RELATIVE_BY_FIRST = by_first(RELATIVE_YEAR_PATTERNS)
_YEARS_AGO = (frozenset({stem("year"), stem("years"), stem("год"), stem("года"), stem("лет")}), {"ago", "назад"})
# "two years ago", "три года назад": counts people write as words
_COUNTS = (
    "one/один two/два/две three/три four/четыре five/пять six/шесть seven/семь eight/восемь nine/девять ten/десять"
)
_COUNT_WORDS = {stem(word): n for n, forms in enumerate(_COUNTS.split(), start=1) for word in forms.split("/")}


def relative_years(stems: list[str], today: datetime.date) -> list[tuple[int, int, int]]:
    """(start, end, year) spans of `stems` that name a year relative to `today` ("last year", "2 года назад")."""
    found: list[tuple[int, int, int]] = []
    i = 0
    while i < len(stems):
        for pattern, offset in _RELATIVE_BY_FIRST.get(stems[i], ()):
            if tuple(stems[i : i + len(pattern)]) == pattern:
                found.append((i, i + len(pattern), today.year + int(offset)))
                i += len(pattern)
                break
        else:
            count = int(stems[i]) if stems[i].isdigit() and len(stems[i]) <= 2 else _COUNT_WORDS.get(stems[i])
            if count and i + 2 < len(stems) and stems[i + 1] in _YEARS_AGO[0] and stems[i + 2] in _YEARS_AGO[1]:
                found.append((i, i + 3, today.year - count))
                i += 3
            else:
                i += 1
    return found
