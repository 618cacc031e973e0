"""Generated text and the data messes of the rehearsal sources (tools/rehearsal_sources.py).

Content is random but shaped like the real items: pseudo-words from a seeded vocabulary (so two
items never agree by chance and near-duplicate detection only finds the duplicates baked in on
purpose), English or French function words, sentence lengths per source close to the real ones
(config.yaml's llm.estimate chars_per_item), and question openings shared across items as in
real exam banks. Everything is deterministic in (seed, source).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence

SYLLABLES = (
    "ab ac ad al am an ar as at ba be bi bo ca ce ci co cu da de di do du el em en er es et "
    "fa fe fi fo ga ge gi go ha he hi ho il im in ir is la le li lo lu ma me mi mo mu na ne "
    "ni no nu ob oc ol om on or os pa pe pi po pu ra re ri ro ru sa se si so su ta te ti to "
    "tu ul um un ur us va ve vi vo xa xe za ze zi"
).split()
EN_WORDS = (
    "the of and in with a patient is was for to on after most likely which following "
    "treatment diagnosis blood pressure history acute chronic pain fever cell disease dose "
    "therapy syndrome infection renal cardiac hepatic year-old man woman presents examination"
).split()
FR_WORDS = (
    "le la les de des du et dans avec un une patient est pour sur après plus probable quel "
    "suivant traitement diagnostic sang pression antécédents aigu chronique douleur fièvre "
    "cellule maladie dose thérapie syndrome infection rénale cardiaque hépatique ans homme femme"
).split()
EN_OPENINGS = (
    "Which of the following",
    "A 45-year-old patient presents with",
    "What is the most likely diagnosis of",
    "All of the following are true except",
    "The drug of choice for",
)
FR_OPENINGS = (
    "Parmi les propositions suivantes, laquelle",
    "Un patient de 45 ans consulte pour",
    "Quel est le diagnostic le plus probable devant",
    "Donner la ou les proposition(s) exacte(s) concernant",
    "Le traitement de première intention de",
)


class Writer:
    """Seeded text of one language: words, sentences, questions, option texts."""

    def __init__(self, seed: str, language: str) -> None:
        self.rng = random.Random(int(hashlib.sha256(seed.encode()).hexdigest()[:16], 16))
        vocab_rng = random.Random(f"{language}-vocabulary")
        made = {
            "".join(vocab_rng.choices(SYLLABLES, k=vocab_rng.randint(2, 4))) for _ in range(6000)
        }
        common = EN_WORDS if language == "en" else FR_WORDS
        # function words weigh as much as all pseudo-words together, as in running text
        self.words = sorted(made) + list(common) * (len(made) // len(common))
        self.openings = EN_OPENINGS if language == "en" else FR_OPENINGS

    def words_text(self, n: int) -> str:
        """n words joined by spaces."""
        return " ".join(self.rng.choices(self.words, k=max(1, n)))

    def sentence(self, n: int) -> str:
        """A capitalised sentence of about n words."""
        text = self.words_text(n)
        return text[0].upper() + text[1:] + "."

    def text(self, chars: int) -> str:
        """Sentences up to about `chars` characters."""
        out: list[str] = []
        size = 0
        while size < chars:
            sentence = self.sentence(self.rng.randint(8, 24))
            out.append(sentence)
            size += len(sentence) + 1
        return " ".join(out)

    def question(self, chars: int) -> str:
        """A question of about `chars` characters opening like an exam question."""
        opening = self.rng.choice(self.openings)
        body = self.words_text(max(3, (chars - len(opening)) // 7))
        return (
            f"{opening} {body} ?"
            if "Parmi" in opening or "Quel" in opening
            else f"{opening} {body}?"
        )

    def options(self, n: int, words: int = 4) -> list[str]:
        """n distinct option texts."""
        found: list[str] = []
        while len(found) < n:
            option = self.words_text(self.rng.randint(1, words)).capitalize()
            if option not in found:
                found.append(option)
        return found

    def pick(self, items: Sequence[int], rate: float, minimum: int = 1) -> list[int]:
        """A sample of `items` at `rate` (at least `minimum` when there are items)."""
        if not items:
            return []
        k = min(len(items), max(minimum, round(len(items) * rate)))
        return sorted(self.rng.sample(list(items), k))

    def hexid(self, *parts: object) -> str:
        """A 64-hex id derived from the parts (FrenchMedMCQA / MORFITT style)."""
        return hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()


# Mess rates, per source (the kinds of trouble real dumps carry; the rates are ours).
TEST_IN_TRAIN_RATE = 0.005  # test items repeated verbatim in the training pool, new id
DUPLICATE_RATE = 0.003  # exact repeats inside one split, new id
MALFORMED_RATE = 0.001
SMALL = 40  # below this many rows (small --scale), no fixed mess: it would exceed 5% alone


def malformed_minimum(rows: int) -> int:
    """At least one broken row per source, except in a pool too small to carry it."""
    return 1 if rows >= SMALL else 0
