"""Text helpers of the demo fixture generator: bilingual stems, options, the translation table."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from demo_fact_bank import DISEASES, DRUGS, SEXES, Disease, Drug

DISEASE_KEYS = {
    "diag": ("en", "fr"),
    "sign": ("sign_en", "sign_fr"),
    "test": ("test_en", "test_fr"),
    "treat": ("treat_en", "treat_fr"),
}
DRUG_KEYS = {
    "drug": ("en", "fr"),
    "class": ("class_en", "class_fr"),
    "adverse": ("adverse_en", "adverse_fr"),
}
Pair = tuple[str, str]


def cap(text: str) -> str:
    """First letter upper-cased, the rest untouched."""
    return text[:1].upper() + text[1:]


def attr(entity: Disease | Drug, qtype: str) -> Pair:
    """(English, French) value of an entity's attribute asked by a question type."""
    keys = DISEASE_KEYS[qtype] if isinstance(entity, Disease) else DRUG_KEYS[qtype]
    return getattr(entity, keys[0]), getattr(entity, keys[1])


def combos(qtypes: list[str], rng: random.Random) -> list[tuple[str, Disease | Drug]]:
    """Every (question type, entity) pair of the given types, in a seeded order."""
    items: list[tuple[str, Disease | Drug]] = []
    for qtype in qtypes:
        pool = DISEASES if qtype in DISEASE_KEYS else DRUGS
        items.extend((qtype, entity) for entity in pool)
    rng.shuffle(items)
    return items


def choose_options(
    rng: random.Random, entity: Disease | Drug, qtype: str, n: int
) -> tuple[list[Pair], int]:
    """n capitalised bilingual options (one correct) and the index of the correct one."""
    pool = DISEASES if isinstance(entity, Disease) else DRUGS
    correct = attr(entity, qtype)
    others = sorted({attr(e, qtype) for e in pool if attr(e, qtype)[0] != correct[0]})
    options = [*rng.sample(others, n - 1), correct]
    rng.shuffle(options)
    return [(cap(en), cap(fr)) for en, fr in options], options.index(correct)


def elide_de(word: str) -> str:
    """French 'de X' with elision before a vowel or mute h."""
    return f"d'{word}" if word[:1].lower() in "aeiouyéèh" else f"de {word}"


def values(entity: Disease | Drug, rng: random.Random) -> tuple[dict[str, str], dict[str, str]]:
    """Template values (English, French) for an entity and a random patient."""
    age = str(rng.randint(19, 84))
    sex_en, who_fr, agree = rng.choice(SEXES)
    en = {"age": age, "who": sex_en}
    fr = {"age": age, "Who": who_fr, "who_l": who_fr.lower(), "e": agree}
    if isinstance(entity, Disease):
        en |= {
            "name": entity.en,
            "sign": entity.sign_en,
            "test": entity.test_en,
            "treat": entity.treat_en,
        }
        fr |= {
            "name": entity.fr,
            "de": entity.de_fr,
            "sign": entity.sign_fr,
            "test": entity.test_fr,
            "treat": entity.treat_fr,
        }
    else:
        en |= {"drug": entity.en, "cls": entity.class_en, "adverse": entity.adverse_en}
        fr |= {
            "drug": entity.fr,
            "de_drug": elide_de(entity.fr),
            "cls": entity.class_fr,
            "adverse": entity.adverse_fr,
        }
    en["Sign"] = cap(en.get("sign", ""))
    en["Drug"] = cap(en.get("drug", ""))
    fr["Drug"] = cap(fr.get("drug", ""))
    return en, fr


@dataclass
class Translations:
    """The authored EN->FR table; each English string maps to exactly one French string."""

    pairs: dict[str, str]

    def __init__(self) -> None:
        self.pairs = {}

    def add(self, en: str, fr: str) -> str:
        """Register a pair and return the English string (conflicting French is an error)."""
        if self.pairs.get(en, fr) != fr:
            raise ValueError(f"two French translations for {en!r}: {self.pairs[en]!r} / {fr!r}")
        self.pairs[en] = fr
        return en

    def write_checked(self, sources_dir: Path, sources: list[str], out: Path) -> int:
        """Write the pairs needed by the adapters' English records; error on any missing one."""
        from medinjection.records import Record
        from medinjection.sources import ADAPTERS

        needed: set[str] = set()
        for source in sources:
            for item in ADAPTERS[source](sources_dir / source, source):
                if isinstance(item, Record):
                    needed |= {item.question, *(t for _, t in item.options or ())}
                    needed |= {s for s in (item.context, item.meta.get("long_answer")) if s}
        missing = sorted(s for s in needed if s and s not in self.pairs)
        if missing:
            raise ValueError(f"{len(missing)} English strings lack a translation: {missing[:5]}")
        out.parent.mkdir(parents=True, exist_ok=True)
        lines = [
            json.dumps({"en": s, "fr": self.pairs[s]}, ensure_ascii=False)
            for s in sorted(needed)
            if s
        ]
        out.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return len(lines)
