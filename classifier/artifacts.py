"""Model folders: atomic save, validating load, version naming.

A folder holds `config.json`, `model.safetensors`, the backbone's text-encoder files
(`vocab.json` or `tokenizer/`), its model card `metrics.json` (`classifier.card`) and the card
in words, `README.md` (`classifier.card_text.render_readme`; never read back).
`save_model` writes everything into a hidden temporary sibling and renames it into place, so a
reader never sees a half-written folder. `load_model` checks every file before returning and
raises one `ModelFolderError` naming the first bad file; it never returns a half-loaded model.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import tempfile
from dataclasses import replace
from importlib import metadata
from pathlib import Path
from typing import Any

from classifier.card import CARD_FILE, ModelCard, read_card
from classifier.card_text import README_FILE, render_readme
from classifier.errors import ModelFolderError
from classifier.model import ARCHITECTURE, FORMAT_VERSION, Classifier

CONFIG, WEIGHTS = "config.json", "model.safetensors"
_VERSION_RE = re.compile(r"^v(\d{4,})$")


def library_versions() -> dict[str, str]:
    import numpy
    import safetensors
    import torch

    try:
        sentibot = metadata.version("sentibot")
    except metadata.PackageNotFoundError:
        sentibot = "0.1.0+src"
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "safetensors": safetensors.__version__,
        "sentibot": sentibot,
    }


def save_model(classifier: Classifier, out_dir: str | Path, card: ModelCard) -> Path:
    """Write `classifier` and its `card` (library versions filled in) to the new folder
    `out_dir` atomically; return its path."""
    from safetensors.torch import save_file

    from classifier.modules import get_backbone

    out = Path(out_dir)
    if out.exists():
        raise ModelFolderError(f"{out}: already exists (model folders are never overwritten)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        _write_json(tmp / CONFIG, classifier.config)
        tensors = {k: v.detach().cpu().contiguous() for k, v in classifier.state_to_save().items()}
        save_file(tensors, str(tmp / WEIGHTS), metadata={"format_version": str(FORMAT_VERSION)})
        classifier.text_encoder.save(tmp)
        expected = get_backbone(classifier.backbone).text_encoder_files
        missing = [name for name in expected if not (tmp / name).exists()]
        if missing:
            raise ModelFolderError(f"{out}: text encoder did not write {', '.join(missing)}")
        card = replace(card, versions=library_versions())
        _write_json(tmp / CARD_FILE, card.to_dict())
        readme = render_readme(card, version=out.name, labels=list(classifier.labels))
        (tmp / README_FILE).write_text(readme, encoding="utf-8")
        _fsync_tree(tmp)
        # Atomic on one filesystem. If `out` appeared meanwhile, rename fails when it has
        # files but silently replaces an EMPTY folder (POSIX rename semantics).
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _fsync_tree(folder: Path) -> None:
    """Flush file contents before the rename, so a crash cannot leave a renamed empty file."""
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())


def _read_json(folder: Path, name: str) -> Any:
    path = folder / name
    if not path.is_file():
        raise ModelFolderError(f"{path}: missing (not a complete model folder)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFolderError(f"{path}: unreadable or not valid JSON ({exc})") from None


def read_config(path: str | Path) -> dict:
    """Read and check `config.json` (format version, architecture, labels, backbone, args)."""
    folder = Path(path)
    if not folder.is_dir():
        raise ModelFolderError(f"{folder}: model folder does not exist")
    config = _read_json(folder, CONFIG)
    where = folder / CONFIG
    if not isinstance(config, dict):
        raise ModelFolderError(f"{where}: expected a JSON object")
    if config.get("format_version") != FORMAT_VERSION:
        raise ModelFolderError(
            f"{where}: format_version {config.get('format_version')!r} is not supported "
            f"(this sentibot reads {FORMAT_VERSION})"
        )
    if config.get("architecture") != ARCHITECTURE:
        raise ModelFolderError(f"{where}: unknown architecture {config.get('architecture')!r}")
    labels = config.get("labels")
    if (
        not isinstance(labels, list)
        or len(labels) < 2
        or not all(isinstance(x, str) and x for x in labels)
        or len(set(labels)) != len(labels)
    ):
        raise ModelFolderError(f"{where}: 'labels' must list at least 2 distinct names")
    if not isinstance(config.get("backbone"), str):
        raise ModelFolderError(f"{where}: 'backbone' must be a name (embedding, bert)")
    if not isinstance(config.get("args"), dict):
        raise ModelFolderError(f"{where}: 'args' must be an object")
    if not isinstance(config.get("max_tokens"), int) or config["max_tokens"] < 1:
        raise ModelFolderError(f"{where}: 'max_tokens' must be a positive integer")
    return config


def load_model(path: str | Path, device: str = "cpu") -> Classifier:
    """Load and validate a model folder onto `device`; ModelFolderError names the bad file."""
    from classifier.modules import get_backbone

    folder = Path(path)
    config = read_config(folder)
    try:
        backbone = get_backbone(config.get("backbone", ""))
    except KeyError as exc:
        raise ModelFolderError(f"{folder / CONFIG}: {exc.args[0]}") from None
    read_card(folder)
    for name in backbone.text_encoder_files:
        if not (folder / name).exists():
            raise ModelFolderError(f"{folder / name}: missing (not a complete model folder)")
    try:
        text_encoder = backbone.load_text_encoder(folder, config["args"])
    except ModelFolderError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        name = backbone.text_encoder_files[0] if backbone.text_encoder_files else "text encoder"
        raise ModelFolderError(f"{folder / name}: {_reason(exc)}") from None
    try:
        module = backbone.build_module(config["args"], len(config["labels"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelFolderError(
            f"{folder / CONFIG}: bad constructor args ({_reason(exc)})"
        ) from None
    tensors = _read_weights(folder / WEIGHTS)
    try:
        backbone.load_state(module, tensors)
    except (ValueError, RuntimeError) as exc:
        raise ModelFolderError(
            f"{folder / WEIGHTS}: does not match config.json: {_reason(exc)}"
        ) from None
    return Classifier(module, text_encoder, config, device)


def _reason(exc: BaseException) -> str:
    return str(exc.args[0]) if exc.args else type(exc).__name__


def _read_weights(path: Path) -> dict:
    from safetensors.torch import load_file

    if not path.is_file():
        raise ModelFolderError(f"{path}: missing (not a complete model folder)")
    try:
        return load_file(str(path), device="cpu")
    except Exception as exc:  # safetensors raises its own error types for truncated headers/data
        raise ModelFolderError(f"{path}: unreadable or truncated ({_reason(exc)})") from None


def list_model_dirs(model_dir: str | Path) -> list[Path]:
    """Version folders (`v0001`, `v0002`, …) under `model_dir`, oldest first."""
    root = Path(model_dir)
    if not root.is_dir():
        return []
    found = [
        (int(m.group(1)), p)
        for p in root.iterdir()
        if p.is_dir() and (m := _VERSION_RE.match(p.name))
    ]
    return [p for _, p in sorted(found)]


def next_version_dir(model_dir: str | Path) -> Path:
    """`model_dir / "v0001"` style: one past the highest existing version number."""
    existing = list_model_dirs(model_dir)
    last = int(_VERSION_RE.match(existing[-1].name).group(1)) if existing else 0  # type: ignore[union-attr]
    return Path(model_dir) / f"v{last + 1:04d}"
