"""Versioned French prompt templates: a record becomes chat `messages`."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from medinjection.records import Record


@dataclass(frozen=True)
class PromptTemplate:
    """French instructions for each task family; changing any text needs a new version.

    None omits a part: no system turn, no instruction line, context without a header.
    """

    version: str
    system: str | None
    instruction_mcqu: str | None
    instruction_mcq: str | None
    instruction_oeq: str | None
    options_header: str
    context_header: str | None
    part_separator: str = "\n\n"


TEMPLATES: dict[str, PromptTemplate] = {
    "v1": PromptTemplate(
        version="v1",
        system="Vous êtes un assistant médical expert. Répondez en français.",
        instruction_mcqu=(
            "Répondez à la question à choix multiples suivante en donnant uniquement "
            "la lettre de la bonne réponse."
        ),
        instruction_mcq=(
            "Répondez à la question à choix multiples suivante en donnant uniquement les "
            "lettres de toutes les bonnes réponses, séparées par des virgules."
        ),
        instruction_oeq="Répondez à la question médicale suivante de façon concise et précise.",
        options_header="Choix de réponses :",
        context_header="Contexte :",
    ),
    # The authors' published example (README of github.com/ikram28/MedInjection-FR): one user
    # turn, the question, then "Choix de réponses :" and one "(A) ..." line per option; no
    # system turn, no instruction line. Their test files' exact strings are not public.
    "official": PromptTemplate(
        version="official",
        system=None,
        instruction_mcqu=None,
        instruction_mcq=None,
        instruction_oeq=None,
        options_header="Choix de réponses :",
        context_header=None,
        part_separator="\n",
    ),
}
DEFAULT_VERSION = "v1"


def get_template(version: str) -> PromptTemplate:
    """Template by version; unknown versions list the valid ones."""
    try:
        return TEMPLATES[version]
    except KeyError:
        raise KeyError(f"unknown prompt template {version!r}; valid: {sorted(TEMPLATES)}") from None


def render_user(record: Record, version: str = DEFAULT_VERSION) -> str:
    """The user turn: instruction, optional context, question, options."""
    tpl = get_template(version)
    instruction = {
        "mcqu": tpl.instruction_mcqu,
        "mcq": tpl.instruction_mcq,
        "oeq": tpl.instruction_oeq,
    }[record.task]
    parts = [] if instruction is None else [instruction]
    if record.context:
        header = "" if tpl.context_header is None else f"{tpl.context_header}\n"
        parts.append(header + record.context.strip())
    parts.append(record.question.strip())
    if record.options:
        lines = [f"({letter}) {text.strip()}" for letter, text in record.options]
        parts.append(tpl.options_header + "\n" + "\n".join(lines))
    return tpl.part_separator.join(parts)


def render_answer(record: Record) -> str:
    """The gold assistant turn: 'A, C' for multiple choice, the text for open questions."""
    if record.task == "oeq":
        return record.answer.strip()
    return ", ".join(record.answer_letters())


def prompt_messages(record: Record, version: str = DEFAULT_VERSION) -> list[dict[str, str]]:
    """System (if the template has one) + user messages at prediction time (no assistant turn)."""
    tpl = get_template(version)
    user = {"role": "user", "content": render_user(record, version)}
    if tpl.system is None:
        return [user]
    return [{"role": "system", "content": tpl.system}, user]


def training_messages(record: Record, version: str = DEFAULT_VERSION) -> list[dict[str, str]]:
    """Full conversation used for SFT: prompt messages plus the gold assistant turn."""
    return [
        *prompt_messages(record, version),
        {"role": "assistant", "content": render_answer(record)},
    ]


def messages_hash(messages: list[dict[str, str]]) -> str:
    """Stable short hash of a message list (prompt provenance in prediction files)."""
    blob = json.dumps(messages, ensure_ascii=False, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
