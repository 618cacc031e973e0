"""Tiny Qwen3 model + tokenizer builder and base-model preparation (tiny | hub | local)."""

from __future__ import annotations

import hashlib
import json
import random
import types
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from medinjection.modeling.tiny import TinySpec
from medinjection.records import LETTERS, Record, write_records
from medinjection.settings import HubModelSettings, TinyModelSettings
from medinjection.stages.train import prepare_base_model
from tests.conftest import load_script
from tests.support.manifests import manifest_beside
from tests.support.tiny_spec import tiny_spec

TINY = tiny_spec(seed=7)


def _records() -> list[Record]:
    return [
        Record(
            id=f"t:{i}",
            origin="native",
            source="t",
            task="mcq",
            split="train",
            question=f"Quelle est la cause {i} de l'hépatite chez l'élève âgé ?",
            answer="A,C",
            options=(("A", "Virus"), ("B", "Bactérie"), ("C", "Alcool")),
            context="Patient de 45 ans, œdème des membres inférieurs.",
        )
        for i in range(12)
    ]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "records.parquet"
    write_records(_records(), path)
    return path


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory, corpus: Path) -> Path:
    out = tmp_path_factory.mktemp("tiny") / "base"
    script = load_script("prepare_base_model")
    smk = types.SimpleNamespace(
        input=types.SimpleNamespace(corpus=[str(corpus)]),
        output=types.SimpleNamespace(model=str(out), manifest=str(manifest_beside(out))),
        params=types.SimpleNamespace(kind="tiny", tiny=TINY, hub=None, local_path=None),
        log=[str(out.parent / "prepare.log")],
    )
    script.main(smk)
    return out


def test_tokenizer_round_trips_french_text(tiny_dir: Path) -> None:
    tok = AutoTokenizer.from_pretrained(tiny_dir)
    text = "L'élève âgé a un œdème à l'hôpital ; ça s'aggrave — Noël, «très» grave."
    ids = tok.encode(text, add_special_tokens=False)
    assert tok.decode(ids) == text
    assert len(ids) < len(text.encode("utf-8"))  # merges were learned


def test_option_letters_and_separators_are_single_tokens(tiny_dir: Path) -> None:
    tok = AutoTokenizer.from_pretrained(tiny_dir)
    for letter in LETTERS:
        assert len(tok.encode(letter, add_special_tokens=False)) == 1
        assert len(tok.encode(f" {letter}", add_special_tokens=False)) == 1
    assert tok.convert_ids_to_tokens(tok.encode("A, C", add_special_tokens=False)) == [
        "A",
        ",",
        "ĠC",
    ]
    assert tok.convert_ids_to_tokens(tok.encode(", ", add_special_tokens=False)) == [",", "Ġ"]


def test_chat_template_is_chatml_with_generation_prompt(tiny_dir: Path) -> None:
    tok = AutoTokenizer.from_pretrained(tiny_dir)
    messages = [
        {"role": "system", "content": "Système"},
        {"role": "user", "content": "Question ?"},
    ]
    text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text == (
        "<|im_start|>system\nSystème<|im_end|>\n"
        "<|im_start|>user\nQuestion ?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    full = tok.apply_chat_template(
        [*messages, {"role": "assistant", "content": "A, C"}], tokenize=False
    )
    assert full == text + "A, C<|im_end|>\n"
    ids = tok.encode(text, add_special_tokens=False)
    assert ids[0] == tok.convert_tokens_to_ids("<|im_start|>")  # special tokens stay whole
    assert (tok.eos_token, tok.pad_token, tok.padding_side) == (
        "<|im_end|>",
        "<|endoftext|>",
        "left",
    )


def test_letter_seed_keeps_its_weight_in_a_large_corpus(monkeypatch: pytest.MonkeyPatch) -> None:
    import random

    from medinjection.modeling import tiny

    assert [tiny.letter_seed_repeats(n) for n in (0, 2117, 6400, 12700, 3_010_018)] == [
        200, 200, 320, 635, 150_500,
    ]  # fmt: skip
    # lowercase pairs drawn ~1,900 times each fill a 512-token vocabulary before letter pairs
    # seeded by 200 fixed lines (400 each): the full-scale rehearsal's failure, in small
    rng = random.Random(0)
    words = [
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(3)) for _ in range(4000)
    ]
    texts = [" ".join(rng.choice(words) for _ in range(10)) for _ in range(64_000)]
    tiny.train_tokenizer(texts, 512)  # 3,200 seed lines: every letter one token
    monkeypatch.setattr(tiny, "letter_seed_repeats", lambda n: 200)
    with pytest.raises(ValueError, match="splits option letters"):
        tiny.train_tokenizer(texts, 512)


def test_model_geometry_and_generation_defaults(tiny_dir: Path) -> None:
    tok = AutoTokenizer.from_pretrained(tiny_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_dir)
    cfg = model.config
    assert type(model).__name__ == "Qwen3ForCausalLM"
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.num_key_value_heads, cfg.head_dim) == (
        32,
        2,
        2,
        8,
    )
    assert cfg.vocab_size == len(tok) <= 512
    assert cfg.tie_word_embeddings
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    assert model.generation_config.do_sample is False
    assert tok.convert_tokens_to_ids("<|im_end|>") in model.generation_config.eos_token_id
    logits = model(torch.tensor([tok.encode("Bonjour", add_special_tokens=False)])).logits
    assert logits.shape[-1] == len(tok) and torch.isfinite(logits).all()


def test_the_script_records_every_file_of_the_model(tiny_dir: Path) -> None:
    from medinjection.manifests import check_folder

    recorded = json.loads(manifest_beside(tiny_dir).read_text())
    assert recorded["rule"] == "prepare_base_model"
    files = {name.removeprefix("base/"): entry for name, entry in recorded["files"].items()}
    assert sorted(files) == sorted(p.name for p in tiny_dir.iterdir())
    assert files["model.safetensors"]["sha256"] == _sha(tiny_dir / "model.safetensors")
    check_folder(tiny_dir, [manifest_beside(tiny_dir)], "predict")  # what its consumers run


def test_tiny_build_is_deterministic(tiny_dir: Path, corpus: Path, tmp_path: Path) -> None:
    prepare_base_model("tiny", tmp_path / "again", [corpus], tiny=TinyModelSettings.from_dict(TINY))
    for name in ("model.safetensors", "tokenizer.json", "config.json"):
        assert _sha(tmp_path / "again" / name) == _sha(tiny_dir / name)


def test_bpe_merges_with_equal_counts_come_out_in_one_order() -> None:
    # every word once: most merge candidates tie on count, so an order taken from a hash map
    # (the Rust trainer reseeds its maps for each training) would show here
    from medinjection.modeling.tiny import train_tokenizer

    rng = random.Random(0)
    words = ["".join(rng.choices("abcdefghij", k=rng.randint(2, 6))) for _ in range(300)]
    texts = [" ".join(words[i : i + 5]) for i in range(0, 300, 5)]
    dumps = {train_tokenizer(texts, 600).backend_tokenizer.to_str() for _ in range(3)}
    assert len(dumps) == 1


def test_initializer_range_sets_the_weights_spread(tiny_dir: Path, corpus: Path, tmp_path: Path):
    # 0.02 spelled out builds the same model as the key left out (every golden stays)
    spec = TinyModelSettings.from_dict({**TINY, "initializer_range": 0.02})
    prepare_base_model("tiny", tmp_path / "same", [corpus], tiny=spec)
    assert _sha(tmp_path / "same" / "model.safetensors") == _sha(tiny_dir / "model.safetensors")
    spec = TinyModelSettings.from_dict({**TINY, "initializer_range": 0.1})
    prepare_base_model("tiny", tmp_path / "wide", [corpus], tiny=spec)
    narrow = AutoModelForCausalLM.from_pretrained(tiny_dir).model.embed_tokens.weight
    wide = AutoModelForCausalLM.from_pretrained(tmp_path / "wide").model.embed_tokens.weight
    assert float(narrow.std()) == pytest.approx(0.02, rel=0.1)
    assert float(wide.std()) == pytest.approx(0.1, rel=0.1)


def test_documents_corpus_is_accepted(tmp_path: Path) -> None:
    docs = tmp_path / "documents.parquet"
    pq.write_table(pa.table({"id": ["d:1"], "text": ["Cas clinique : fièvre élevée."]}), docs)
    prepare_base_model("tiny", tmp_path / "m", [docs], tiny=TinyModelSettings.from_dict(TINY))
    tok = AutoTokenizer.from_pretrained(tmp_path / "m")
    assert tok.decode(tok.encode("fièvre", add_special_tokens=False)) == "fièvre"


def test_corpus_with_unknown_columns_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"foo": ["x"]}), bad)
    with pytest.raises(ValueError, match="bad.parquet"):
        prepare_base_model("tiny", tmp_path / "m", [bad], tiny=TinyModelSettings.from_dict(TINY))


def test_tiny_spec_names_missing_keys() -> None:
    with pytest.raises(ValueError, match="missing keys \\['seed'\\]"):
        TinySpec.from_dict({k: v for k, v in TINY.items() if k != "seed"})


def test_local_kind_links_the_directory(tiny_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "models" / "base"
    prepare_base_model("local", out, [], local_path=str(tiny_dir))
    assert out.is_symlink() and out.resolve() == tiny_dir.resolve()
    prepare_base_model("local", out, [], local_path=str(tiny_dir))  # a rerun relinks
    assert (out / "config.json").is_file()


def test_local_kind_without_config_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "empty")):
        (tmp_path / "empty").mkdir()
        prepare_base_model("local", tmp_path / "out", [], local_path=str(tmp_path / "empty"))


def test_hub_kind_calls_snapshot_download(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import huggingface_hub

    calls = []

    def fake_snapshot_download(repo_id: str, revision: str | None, local_dir: Path) -> str:
        calls.append((repo_id, revision, Path(local_dir)))
        Path(local_dir).mkdir(parents=True, exist_ok=True)
        (Path(local_dir) / "config.json").write_text("{}")
        return str(local_dir)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    hub = {"repo": "Qwen/Qwen3-4B-Instruct-2507", "revision": "abc123"}  # the schema's keys
    prepare_base_model("hub", tmp_path / "base", [], hub=HubModelSettings.from_dict(hub))
    assert calls == [("Qwen/Qwen3-4B-Instruct-2507", "abc123", tmp_path / "base")]


def test_unknown_kind_lists_valid_kinds(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="valid: \\['hub', 'local', 'tiny'\\]"):
        prepare_base_model("s3", tmp_path, [])


def test_letter_seed_lines_grow_with_a_large_corpus() -> None:
    """A corpus of options A-E only (the released data, 3.6M texts) drowned 200 seed lines: " J"
    stayed two tokens. Small corpora (the demo's ~2K texts) keep exactly 200 lines."""
    from medinjection.modeling.tiny import seed_texts

    def lines(n: int) -> int:
        return sum(text.startswith("A, B, C") for text in seed_texts(n))

    assert lines(0) == lines(2117) == 200
    assert lines(3_634_773) == 3_634_773 // 20
