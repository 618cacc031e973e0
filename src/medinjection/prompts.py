"""Versioned French prompt templates: a record becomes chat `messages`."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from medinjection.records import Record


@dataclass(frozen=True)
class PromptTemplate:
    """French instructions for each task family; changing any text needs a new version."""

    version: str
    system: str
    instruction_mcqu: str
    instruction_mcq: str
    instruction_oeq: str
    options_header: str
    context_header: str


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
    )
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
    parts = [instruction]
    if record.context:
        parts.append(f"{tpl.context_header}\n{record.context.strip()}")
    parts.append(record.question.strip())
    if record.options:
        lines = [f"({letter}) {text.strip()}" for letter, text in record.options]
        parts.append(tpl.options_header + "\n" + "\n".join(lines))
    return "\n\n".join(parts)


def render_answer(record: Record) -> str:
    """The gold assistant turn: 'A, C' for multiple choice, the text for open questions."""
    if record.task == "oeq":
        return record.answer.strip()
    return ", ".join(record.answer_letters())


def prompt_messages(record: Record, version: str = DEFAULT_VERSION) -> list[dict[str, str]]:
    """System + user messages used at prediction time (no assistant turn)."""
    tpl = get_template(version)
    return [
        {"role": "system", "content": tpl.system},
        {"role": "user", "content": render_user(record, version)},
    ]


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
