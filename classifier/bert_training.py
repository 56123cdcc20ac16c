"""One training run of the BERT backbone: modes, learning rates, the warm-up schedule, and the
frozen encoder's vectors (encoded once per run, kept between runs in the feature store).

`frozen`: the encoder stays fixed and only the head trains; every training text is encoded once
(length-sorted batches, skipping texts the feature store already has) and its pooled vector
cached, so the epochs only touch the head: fast on a CPU. `finetune`: all weights train, the
encoder with a small learning rate, both with a linear warm-up then linear decay: meant for a
GPU. `auto` picks `finetune` on CUDA and `frozen` on the CPU.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.optim.lr_scheduler import LambdaLR, LRScheduler

from classifier.bert_encoder import MODES, BertEncoder, BertTextEncoder, assemble_module
from classifier.bert_features import FeatureStore, text_key
from classifier.bert_pretrained import (
    DEFAULT_PACKAGE,
    encoder_sha256,
    hf_config_dict,
    is_default_package,
    load_pretrained,
    load_tokenizer,
    max_positions,
    resolve_bert_path,
)
from classifier.modules import BackboneRun, SentenceClassifierModule
from classifier.progress import progress
from classifier.recipe import RunSettings, TrainRecipe

log = logging.getLogger(__name__)

# Learning rates: the pretrained encoder only needs nudging, the freshly initialised head learns
# faster. 8e-5 suits the default all-MiniLM-L6-v2 (a small model): fine-tuned on the SemEval
# train for 2 epochs it scored 0.700 macro-F1 on TweetEval validation against 0.687 with 3e-5
# (docs/bert.md); base-size encoders usually want 2e-5..5e-5 (`TrainRecipe.encoder_lr`).
# `TrainRecipe.head_lr` overrides the head's rate; `TrainRecipe.lr` belongs to the embedding
# backbone's sparse table and is not used here.
ENCODER_LR = 8e-5
FINETUNE_HEAD_LR = 1e-3
FROZEN_HEAD_LR = 1e-2
WARMUP_FRACTION = 0.1  # of all optimisation steps
# Texts collated at once when encoding the training set, one progress step each: a few seconds
# of a CPU's work; on a GPU room for several of the encoder's sub-batches (`BATCH_ROWS`).
ENCODE_CHUNK = {"cpu": 256, "cuda": 2048}


def resolve_mode(mode: str | None, device: str | torch.device) -> str:
    """`auto` → `finetune` on CUDA, `frozen` elsewhere; otherwise `mode` itself (validated)."""
    mode = (mode or "auto").lower()
    if mode == "auto":
        return "finetune" if torch.device(device).type == "cuda" else "frozen"
    if mode not in MODES:
        raise ValueError(f"BERT mode must be auto, frozen or finetune, not {mode!r}")
    return mode


def warmup_linear(warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    """The learning-rate factor of step k (0-based), for `LambdaLR`: (k + 1) / warmup while
    warming up, then falling linearly to 0 at `total_steps`."""
    warmup, total = max(1, warmup_steps), max(1, total_steps)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total - step) / max(1, total - warmup))

    return factor


class BertRun(BackboneRun):
    """The pretrained encoder, loaded once for this run, and in frozen mode the pooled vector of
    every training text (encoded before the first epoch)."""

    def __init__(self, texts: Sequence[str], recipe: TrainRecipe, run: RunSettings):
        folder = resolve_bert_path(recipe.bert_path)
        self.mode = resolve_mode(recipe.bert_mode, run.device)
        self.recipe, self.run = recipe, run
        tokenizer = load_tokenizer(folder)
        model = load_pretrained(folder)
        text_encoder = BertTextEncoder(tokenizer, max_positions(model))
        self.sha256 = encoder_sha256(model)
        log.info("BERT backbone: %s encoder from %s", self.mode, folder)
        self.encoded: dict[bytes, Tensor] = {}
        self.stored: dict[bytes, Tensor] = {}
        if self.mode == "frozen":
            self.encoded, self.stored = encode_once(
                model, text_encoder, texts, recipe, run, self.sha256
            )
        self._model: torch.nn.Module | None = model
        args = {
            "mode": self.mode,
            "encoder_source": str(folder),
            "encoder_package": DEFAULT_PACKAGE if is_default_package(folder) else None,
            "encoder_sha256": self.sha256,
            "hidden_size": int(model.config.hidden_size),
            "max_positions": text_encoder.max_positions,
            "dropout": recipe.dropout,
            "hf_config": hf_config_dict(model),
        }
        super().__init__(text_encoder, args)

    def build_module(self, num_labels: int) -> SentenceClassifierModule:
        """Around the encoder loaded above (handed over once); a frozen one starts with every
        training text's vector cached."""
        model, self._model = self._model, None
        if model is None:
            raise RuntimeError("build_module() runs once per training run")
        module = assemble_module(model, self.args, num_labels)
        encoder: BertEncoder = module.encoder  # type: ignore[assignment]
        encoder.enable_cache(self.encoded, self.stored)
        self.encoded, self.stored = {}, {}
        return module

    def optimizers(
        self, module: SentenceClassifierModule, total_steps: int
    ) -> tuple[list[torch.optim.Optimizer], list[LRScheduler]]:
        encoder: BertEncoder = module.encoder  # type: ignore[assignment]
        head = [p for n, p in module.named_parameters() if not n.startswith("encoder.")]
        head_lr = self.recipe.head_lr
        if encoder.frozen:
            return [torch.optim.AdamW(head, lr=head_lr or FROZEN_HEAD_LR, weight_decay=1e-4)], []
        groups = [
            {
                "params": list(encoder.parameters()),
                "lr": self.recipe.encoder_lr or ENCODER_LR,
                "weight_decay": 0.01,
            },
            {"params": head, "lr": head_lr or FINETUNE_HEAD_LR, "weight_decay": 1e-4},
        ]
        optimizer = torch.optim.AdamW(groups)
        warmup = math.ceil(WARMUP_FRACTION * total_steps)
        return [optimizer], [LambdaLR(optimizer, warmup_linear(warmup, total_steps))]

    def finish(self, classifier) -> None:
        encoder: BertEncoder = classifier.module.encoder
        if encoder.frozen:
            save_features(encoder, self.run, self.sha256)


# --- the frozen encoder's vectors ----------------------------------------------------------------
def encode_once(
    model: torch.nn.Module,
    text_encoder: BertTextEncoder,
    texts: Sequence[str],
    recipe: TrainRecipe,
    run: RunSettings,
    sha256: str,
) -> tuple[dict[bytes, Tensor], dict[bytes, Tensor]]:
    """Pooled vectors of all training texts keyed by their token ids, and the feature store's
    vectors (by `text_key`; {} without a store) for texts met later, such as dev texts.

    With `run.feature_cache` set, vectors of texts an earlier run encoded with this same
    encoder come from that folder's `FeatureStore`; only the others are encoded (in
    length-sorted chunks). `BertRun.finish` writes the store back.
    """
    device = torch.device(run.device)
    seqs = text_encoder.tokenize(texts, recipe.max_tokens)
    unique = {s.tobytes(): s for s in seqs}
    store = _store(run, sha256)
    stored = store.load(int(model.config.hidden_size)) if store is not None else {}
    cache = {k: stored[text_key(k)].to(device) for k in unique if text_key(k) in stored}
    missing = [seq for key, seq in unique.items() if key not in cache]
    log.info(
        "frozen encoder: %d distinct training texts, %d from the feature store, %d to encode",
        len(unique),
        len(cache),
        len(missing),
    )
    encoder = BertEncoder(model, frozen=True).to(device)
    cache.update(_encode(encoder, text_encoder, missing, enabled=run.progress))
    return cache, stored


def _store(run: RunSettings, sha256: str) -> FeatureStore | None:
    if not run.feature_cache:
        return None
    return FeatureStore(Path(run.feature_cache), sha256, torch.device(run.device).type)


def save_features(encoder: BertEncoder, run: RunSettings, sha256: str) -> None:
    """Put every vector this run encoded (training and dev texts) into the feature store,
    ahead of the older ones it still has room for."""
    store = _store(run, sha256)
    if store is None or not encoder._cache:
        return
    fresh = {text_key(key): vector for key, vector in encoder._cache.items()}
    older = encoder._stored  # what the store held when this run started
    if fresh.keys() <= older.keys():
        return  # nothing new to write
    written = store.save({**fresh, **{k: v for k, v in older.items() if k not in fresh}})
    log.info("feature store %s: %d vectors", store.path, written)


def _encode(
    encoder: BertEncoder,
    text_encoder: BertTextEncoder,
    seqs: list[np.ndarray],
    *,
    enabled: bool | None = True,
) -> dict[bytes, Tensor]:
    """Pooled vectors of `seqs`, collated in length-sorted chunks (one giant padded matrix
    would waste memory), with progress (minutes on a CPU for tens of thousands of texts)."""
    out: dict[bytes, Tensor] = {}
    device = next(encoder.parameters()).device
    ordered = sorted(seqs, key=len)
    chunk = ENCODE_CHUNK["cuda" if device.type == "cuda" else "cpu"]
    bar = progress("frozen BERT: encoding texts", len(ordered), unit="texts", enabled=enabled)
    with bar, torch.inference_mode():
        for start in range(0, len(ordered), chunk):
            part = ordered[start : start + chunk]
            batch = {k: v.to(device) for k, v in text_encoder.collate(part).items()}
            pooled = encoder._sorted(batch["input_ids"], batch["attention_mask"])
            for seq, vector in zip(part, pooled, strict=True):
                out[seq.tobytes()] = vector.clone()
            bar.update(len(part))
    return out
