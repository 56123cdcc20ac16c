"""`sentibot train | eval | predict` through the real `bot.cli.main`, and CSV reading."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

import bot.cli
from classifier.data import read_labelled_csv
from classifier.errors import DataError

ROOT = Path(__file__).resolve().parents[2]
SEED_CSV = (
    "text,label\n"
    '"This is a good movie.",1\n'
    '"The plot is confusing.",0\n'
    '"I love the soundtrack.",1\n'
)


@pytest.fixture(autouse=True)
def env(monkeypatch, tmp_path):
    """A private DATA_DIR."""
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("MODEL_DIR", raising=False)
    monkeypatch.setenv("DEVICE", "cpu")
    monkeypatch.chdir(tmp_path)  # no stray .env is read


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def tiny_csv(tmp_path, tiny_training_data):
    import csv

    path = tmp_path / "tiny.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["message", "sentiment"])
        writer.writerows(zip(*tiny_training_data, strict=True))
    return path


def run(capsys, *argv):
    code = bot.cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_seed_example_end_to_end(tmp_path, capsys):
    data = write(tmp_path / "seed.csv", SEED_CSV)
    code, out, err = run(capsys, "train", "--data", str(data), "--labels", "0,1", "--epochs", "3")
    assert code == 0, err
    assert (tmp_path / "data" / "models" / "v0001" / "model.safetensors").is_file()
    assert "macro-F1" in out and "epoch 1/3" in err
    code, out, err = run(capsys, "predict", "The acting is terrible.")
    assert code == 0, err
    label, percent = out.strip().split()
    assert label in {"0", "1"} and percent.endswith("%")


def test_train_eval_predict_json(tmp_path, capsys, tiny_csv):
    out_dir = tmp_path / "my-model"
    code, _, err = run(
        capsys,
        "train",
        "--data",
        str(tiny_csv),
        "--text-col",
        "message",
        "--label-col",
        "sentiment",
        "--out",
        str(out_dir),
        "--epochs",
        "20",
        "--seed",
        "3",
    )
    assert code == 0, err
    assert json.loads((out_dir / "config.json").read_text())["labels"] == [
        "negative",
        "neutral",
        "positive",
    ]
    code, out, err = run(
        capsys,
        "eval",
        "--data",
        str(tiny_csv),
        "--model",
        str(out_dir),
        "--json",
        "--text-col",
        "message",
        "--label-col",
        "sentiment",
    )
    assert code == 0, err
    assert json.loads(out)["accuracy"] > 0.8
    probes = ["I love this, it is great!", "Horrible service, never again"]
    code, out, err = run(capsys, "predict", "--model", str(out_dir), *probes)
    assert code == 0, err
    assert [line.split()[0] for line in out.strip().splitlines()] == ["positive", "negative"]


def test_eval_json_shape_and_table(tmp_path, capsys, tiny_model_dir, tiny_training_data):
    import csv

    path = tmp_path / "eval.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([("text", "label"), *zip(*tiny_training_data, strict=True)])
    code, out, err = run(
        capsys, "eval", "--data", str(path), "--model", str(tiny_model_dir), "--json"
    )
    assert code == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 1
    data = json.loads(lines[0])
    assert {"accuracy", "macro_f1", "labels", "per_class", "confusion", "n"} <= set(data)
    assert data["n"] == 36 and data["labels"] == ["negative", "neutral", "positive"]
    assert set(data["per_class"]["neutral"]) == {"precision", "recall", "f1", "support"}
    code, out, _ = run(capsys, "eval", "--data", str(path), "--model", str(tiny_model_dir))
    assert code == 0 and "macro-F1" in out and "confusion" in out


def test_eval_binary_data_on_three_class_model(tmp_path, capsys, tiny_model_dir):
    path = write(tmp_path / "bin.csv", "text,label\nI love it,positive\nI hate it,negative\n")
    code, out, _ = run(
        capsys, "eval", "--data", str(path), "--model", str(tiny_model_dir), "--json"
    )
    assert code == 0
    data = json.loads(out)
    assert data["labels"] == ["negative", "positive"]
    assert data["restricted_to"] == ["negative", "positive"]
    code, out, _ = run(capsys, "eval", "--data", str(path), "--model", str(tiny_model_dir))
    assert "restricted to negative, positive" in out


def test_predict_json_and_odd_texts(capsys, tiny_model_dir):
    texts = ["I love it", "", "   ", "😀😀😀", "long " * 20_000]
    code, out, err = run(capsys, "predict", "--model", str(tiny_model_dir), "--json", *texts)
    assert code == 0, err
    records = [json.loads(line) for line in out.strip().splitlines()]
    assert [r["text"] for r in records] == texts
    first = records[0]
    assert set(first) == {"text", "label", "confidence", "probs", "model"}
    assert first["model"] == "v0001" and first["label"] == "positive"
    assert first["confidence"] == pytest.approx(max(first["probs"].values()))


def test_default_model_is_newest_version(tmp_path, capsys, tiny_model_dir, monkeypatch):
    import shutil

    models = tmp_path / "data" / "models"
    shutil.copytree(tiny_model_dir, models / "v0002")
    shutil.copytree(tiny_model_dir, models / "v0010")
    code, out, _ = run(capsys, "predict", "--json", "hello")
    assert code == 0 and json.loads(out)["model"] == "v0010"


# --- bad input: one clear line, exit 2 (or 1 for operator problems), never a traceback ---------
def bad(capsys, *argv, code=2):
    got, out, err = run(capsys, *argv)
    assert got == code, err
    lines = err.strip().splitlines()
    assert lines[-1].startswith("sentibot: error: ") and "Traceback" not in err
    return lines[-1]


def test_missing_file(capsys, tmp_path):
    assert "nope.csv: no such file" in bad(capsys, "train", "--data", str(tmp_path / "nope.csv"))


def test_missing_columns(capsys, tmp_path):
    data = write(tmp_path / "d.csv", SEED_CSV)
    msg = bad(capsys, "train", "--data", str(data), "--text-col", "body")
    assert "no column 'body'" in msg and "d.csv" in msg
    msg = bad(capsys, "train", "--data", str(data), "--label-col", "y")
    assert "no column 'y'" in msg


def test_empty_label(capsys, tmp_path):
    data = write(tmp_path / "d.csv", "text,label\ngood,positive\nbad,\n")
    assert "line 3: empty label" in bad(capsys, "train", "--data", str(data))


def test_unknown_label(capsys, tmp_path):
    data = write(tmp_path / "d.csv", "text,label\ngood,positive\nbad,angry\n")
    msg = bad(capsys, "train", "--data", str(data), "--labels", "negative,positive")
    assert "line 3: unknown label 'angry'" in msg


def test_blank_text(capsys, tmp_path):
    data = write(tmp_path / "d.csv", 'text,label\ngood,positive\n"   ",negative\n')
    assert "line 3: blank text" in bad(capsys, "train", "--data", str(data))


@pytest.mark.parametrize("labels", ["positive", "a,", "a,a"])
def test_label_list_too_short_or_broken(capsys, tmp_path, labels):
    data = write(tmp_path / "d.csv", SEED_CSV)
    assert "--labels" in bad(capsys, "train", "--data", str(data), "--labels", labels)


def test_single_label_in_data(capsys, tmp_path):
    data = write(tmp_path / "d.csv", "text,label\ngood,positive\ngreat,positive\n")
    assert "at least 2 different labels" in bad(capsys, "train", "--data", str(data))
    # Naming two labels does not help when the data has only one of them.
    msg = bad(capsys, "train", "--data", str(data), "--labels", "negative,positive")
    assert "at least 2 different labels" in msg and "'positive'" in msg


def test_header_only_and_empty_file(capsys, tmp_path):
    data = write(tmp_path / "d.csv", "text,label\n")
    assert "no data rows" in bad(capsys, "train", "--data", str(data))
    empty = write(tmp_path / "e.csv", "")
    assert "empty file" in bad(capsys, "train", "--data", str(empty))


def test_eval_label_the_model_lacks(capsys, tmp_path, tiny_model_dir):
    data = write(tmp_path / "d.csv", "text,label\ngood,positive\nbad,angry\n")
    msg = bad(capsys, "eval", "--data", str(data), "--model", str(tiny_model_dir))
    assert "unknown label 'angry'" in msg and "negative, neutral, positive" in msg


def test_no_model_yet(capsys):
    msg = bad(capsys, "predict", "hello", code=1)
    assert "sentibot bootstrap" in msg and "sentibot train" in msg


def test_missing_model_folder(capsys, tmp_path):
    assert "--model" in bad(capsys, "predict", "--model", str(tmp_path / "nope"), "hi")
    a_file = write(tmp_path / "model.safetensors", "")
    assert "not a folder" in bad(capsys, "predict", "--model", str(a_file), "hi")


def test_corrupt_model_folder(capsys, tmp_path, tiny_model_dir):
    import shutil

    broken = tmp_path / "v0001"
    shutil.copytree(tiny_model_dir, broken)
    (broken / "vocab.json").unlink()
    msg = bad(capsys, "predict", "--model", str(broken), "hi", code=1)
    assert "vocab.json" in msg


def test_out_folder_exists(capsys, tmp_path):
    data = write(tmp_path / "d.csv", SEED_CSV)
    (tmp_path / "taken").mkdir()
    assert "--out" in bad(
        capsys, "train", "--data", str(data), "--labels", "0,1", "--out", str(tmp_path / "taken")
    )


def test_bad_epochs_is_an_argparse_error(capsys, tmp_path):
    with pytest.raises(SystemExit) as info:
        bot.cli.main(["train", "--data", "x.csv", "--epochs", "0"])
    assert info.value.code == 2
    assert "--epochs" in capsys.readouterr().err


def test_read_csv_bom_quotes_and_long_text(tmp_path):
    long = "é" * 100_000
    path = tmp_path / "d.csv"
    path.write_text(
        f'\ufefftext,label\n"a, ""quoted"" text",positive\n{long},negative\n', encoding="utf-8"
    )
    texts, labels = read_labelled_csv(path)
    assert texts == ['a, "quoted" text', long] and labels == ["positive", "negative"]


def test_read_csv_not_utf8_names_the_line(tmp_path):
    # Far enough into the file that the decoder's chunk offset differs from the file's.
    path = tmp_path / "d.csv"
    rows = "ok,positive\n" * 2000
    path.write_bytes(f"text,label\n{rows}caf\xe9,positive\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"line 2002: not UTF-8"):
        read_labelled_csv(path)


def test_negative_seed_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as info:
        bot.cli.main(["train", "--data", "x.csv", "--seed", "-1"])
    assert info.value.code == 2
    assert "--seed" in capsys.readouterr().err


@pytest.mark.slow
def test_python_m_bot_smoke(tmp_path, tiny_model_dir):
    """Real processes through `python -m bot`: a prediction, and a bad input exiting 2."""
    env = {"PATH": "/usr/bin:/bin", "DATA_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}

    def sentibot(*argv):
        return subprocess.run(
            [sys.executable, "-m", "bot", *argv],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=120,
        )

    proc = sentibot("predict", "--model", str(tiny_model_dir), "--json", "I love this")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["label"] == "positive"
    proc = sentibot("train", "--data", str(tmp_path / "missing.csv"))
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"sentibot: error: {tmp_path / 'missing.csv'}: no such file"
