"""Token-length report of a mixture, on a word-level tokenizer whose counts are known by hand."""

from __future__ import annotations

import json
import types
from pathlib import Path

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from medinjection.manifests import ManifestMismatch
from medinjection.modeling.tiny import CHAT_TEMPLATE, EOT, IM_END, IM_START
from medinjection.modeling.token_lengths import length_summary
from tests.conftest import load_script
from tests.support.manifests import record_folder

WORDS = range(1, 21)  # the user turn of row k has k words


def _answer_words(k: int) -> int:
    return k % 3 + 1


def _word_tokenizer(out: Path) -> Path:
    """One token per whitespace-separated word, one per special token: ChatML counts by hand.

    A message renders as <|im_start|> role \\n content <|im_end|> \\n: words + 3 tokens; the
    generation prompt <|im_start|> assistant \\n is 2.
    """
    core = Tokenizer(models.WordLevel(vocab={"[UNK]": 0}, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.add_special_tokens([EOT, IM_START, IM_END])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, unk_token="[UNK]", pad_token=EOT, eos_token=IM_END
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(out)
    return out


def _row(user_words: int, answer_words: int) -> str:
    messages = [
        {"role": "system", "content": "médecin"},
        {"role": "user", "content": " ".join(["mot"] * user_words)},
        {"role": "assistant", "content": " ".join(["A"] * answer_words)},
    ]
    return json.dumps({"id": f"x:{user_words}", "messages": messages}, ensure_ascii=False)


def test_token_length_report_of_a_constructed_mixture(tmp_path: Path) -> None:
    model = _word_tokenizer(tmp_path / "model")
    (tmp_path / "train.jsonl").write_text("\n".join(_row(k, _answer_words(k)) for k in WORDS))
    (tmp_path / "validation.jsonl").write_text(_row(30, 1) + "\n" + _row(2, 2) + "\n")
    smk = types.SimpleNamespace(
        input=types.SimpleNamespace(
            model=str(model),
            model_manifest=str(record_folder(model, "prepare_base_model")),
            train=str(tmp_path / "train.jsonl"),
            validation=str(tmp_path / "validation.jsonl"),
        ),
        output=types.SimpleNamespace(report=str(tmp_path / "out" / "token_lengths.json")),
        params=types.SimpleNamespace(max_length=25),
        log=[str(tmp_path / "log")],
    )
    load_script("token_lengths").main(smk)
    report = json.loads((tmp_path / "out" / "token_lengths.json").read_text())
    # system 1 word + 3, user k + 3, assistant a + 3: k + a + 10 tokens, 13..33 here
    train = report["train"]["sequence"]
    assert (train["n"], train["min"], train["max"]) == (20, 13, 33)
    assert train["n_over_max_length"] == 7  # 26, 27, 28, 29, 30, 31, 33
    assert train["tokens_cut"] == 1 + 2 + 3 + 4 + 5 + 6 + 8
    assert train["p50"] == pytest.approx(22.5) and train["p90"] == pytest.approx(30.1)
    assert train["mean"] == pytest.approx(sum(k + _answer_words(k) + 10 for k in WORDS) / 20)
    # the answer part is the assistant's words + <|im_end|> (what loss_on: answer trains on)
    answer = report["train"]["answer"]
    assert (answer["min"], answer["max"], answer["n"]) == (2, 4, 20)
    validation = report["validation"]["sequence"]
    assert (validation["n"], validation["max"], validation["n_over_max_length"]) == (2, 41, 1)
    assert report["max_length"] == 25 and len(report["chat_template_sha256"]) == 64
    # the tokenizer edited after prepare_base_model recorded it: refused, nothing counted
    (model / "tokenizer.json").write_text((model / "tokenizer.json").read_text() + " ")
    refused = rf"^{model / 'tokenizer.json'}: \d+ bytes, .* Rerun it \(snakemake --forcerun "
    with pytest.raises(ManifestMismatch, match=refused + r"prepare_base_model\), then token_len"):
        load_script("token_lengths").main(smk)


def test_length_summary_of_nothing_and_without_a_limit() -> None:
    assert length_summary([]) == {"n": 0}
    summary = length_summary([1, 2, 3, 4])
    assert summary["p50"] == 2.5 and summary["tokens"] == 10 and "n_over_max_length" not in summary
