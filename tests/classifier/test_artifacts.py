"""Model folders: round trip, atomic writes, refusal of corrupt folders, version naming."""

import json
import shutil

import numpy as np
import pytest

from classifier.artifacts import list_model_dirs, load_model, next_version_dir, save_model
from classifier.card import CARD_VERSION, ModelCard, read_card
from classifier.errors import ModelFolderError

PROBES = ["I love it", "", "😀😀", "The report has ten pages", "word " * 5000]


@pytest.fixture
def model_copy(tiny_model_dir, tmp_path):
    target = tmp_path / "v0001"
    shutil.copytree(tiny_model_dir, target)
    return target


def test_folder_contents(tiny_model_dir):
    names = sorted(p.name for p in tiny_model_dir.iterdir())
    assert names == ["README.md", "config.json", "metrics.json", "model.safetensors", "vocab.json"]
    config = json.loads((tiny_model_dir / "config.json").read_text())
    assert config["format_version"] == 1 and config["backbone"] == "embedding"
    assert config["labels"] == ["negative", "neutral", "positive"]
    assert {"vocab_size", "embedding_dim"} <= set(config["args"])
    card = read_card(tiny_model_dir)
    assert card.card_version == CARD_VERSION and card.kind == "train"
    assert card.data["rows_per_label"] == {"negative": 12, "neutral": 12, "positive": 12}
    assert len(card.data["sha256"]) == 64
    assert card.recipe["epochs"] == 30 and card.dev is not None
    assert {"python", "torch", "sentibot"} <= set(card.versions)
    readme = (tiny_model_dir / "README.md").read_text(encoding="utf-8")
    assert readme.startswith("# Sentiment model v0001")
    for section in ("Intended use", "Data", "Metrics", "Training", "Limitations"):
        assert f"## {section}" in readme
    # Measured on 3 dev rows: flagged.
    assert "the dev split of the training data (3 rows, unreliable)." in readme


def test_save_load_identical_outputs(tiny_model_dir, tmp_path):
    original = load_model(tiny_model_dir)
    card = ModelCard(kind="train", origin={"note": "hi"})
    out = save_model(original, tmp_path / "again", card)
    again = load_model(out)
    np.testing.assert_array_equal(original.predict_proba(PROBES), again.predict_proba(PROBES))
    assert read_card(out).origin == {"note": "hi"}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left


def test_save_refuses_existing_folder(tiny_model_dir, tmp_path):
    (tmp_path / "v0001").mkdir()
    with pytest.raises(ModelFolderError, match="already exists"):
        save_model(load_model(tiny_model_dir), tmp_path / "v0001", ModelCard(kind="train"))


def test_failed_save_leaves_nothing(tiny_model_dir, tmp_path):
    classifier = load_model(tiny_model_dir)
    with pytest.raises(TypeError):
        save_model(classifier, tmp_path / "v0002", ModelCard("train", origin={"bad": object()}))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["config.json", "model.safetensors", "vocab.json", "metrics.json"])
def test_missing_file_is_refused(model_copy, name):
    (model_copy / name).unlink()
    with pytest.raises(ModelFolderError, match=name.replace(".", r"\.")) as info:
        load_model(model_copy)
    assert "missing" in str(info.value)


def test_truncated_weights_are_refused(model_copy):
    path = model_copy / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFolderError, match=r"model\.safetensors.*truncated"):
        load_model(model_copy)


def test_garbage_json_is_refused(model_copy):
    (model_copy / "vocab.json").write_text("{not json")
    with pytest.raises(ModelFolderError, match=r"vocab\.json"):
        load_model(model_copy)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (
            lambda c: c["args"].update(embedding_dim=c["args"]["embedding_dim"] * 2),
            "model.safetensors",
        ),
        (lambda c: c["labels"].append("angry"), "model.safetensors"),
        (lambda c: c["args"].update(vocab_size=7), "vocab.json"),
        (lambda c: c.update(format_version=99), "format_version"),
        (lambda c: c.update(labels=["only"]), "labels"),
        (lambda c: c.update(backbone="nope"), "unknown backbone"),
        (lambda c: c.update(backbone=["embedding"]), "'backbone' must be a name"),
    ],
)
def test_mismatched_config_is_refused(model_copy, change, match):
    path = model_copy / "config.json"
    config = json.loads(path.read_text())
    change(config)
    path.write_text(json.dumps(config))
    with pytest.raises(ModelFolderError, match=match):
        load_model(model_copy)


def test_missing_folder_is_refused(tmp_path):
    with pytest.raises(ModelFolderError, match="does not exist"):
        load_model(tmp_path / "nothing")


def test_version_dirs(tmp_path):
    assert list_model_dirs(tmp_path / "absent") == []
    assert next_version_dir(tmp_path) == tmp_path / "v0001"
    for name in ["v0002", "v0010", "notes", "v1", ".v0003.tmp-x"]:
        (tmp_path / name).mkdir()
    (tmp_path / "v0011").write_text("a file, not a folder")
    assert [p.name for p in list_model_dirs(tmp_path)] == ["v0002", "v0010"]
    assert next_version_dir(tmp_path) == tmp_path / "v0011"
