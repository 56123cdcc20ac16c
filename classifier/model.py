"""`Classifier`: a text encoder + the torch module + the config that describes both."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from classifier.modules import SentenceClassifierModule, get_backbone

FORMAT_VERSION = 1
ARCHITECTURE = "SentenceClassifier"


def make_config(
    backbone: str, labels: Sequence[str], args: dict, *, max_tokens: int, **extra: Any
) -> dict:
    """The dict saved as `config.json` (format version, architecture, constructor args, labels)."""
    return {
        "format_version": FORMAT_VERSION,
        "architecture": ARCHITECTURE,
        "backbone": backbone,
        "pooling": "mean",
        "labels": list(labels),
        "max_tokens": int(max_tokens),
        "args": dict(args),
        **extra,
    }


class Classifier:
    """A trained sentiment model ready for inference.

    `predict_proba(texts)` is synchronous and thread-safe for concurrent readers (it never mutates
    the module); the `Predictor` calls it from its worker thread.
    """

    def __init__(
        self,
        module: SentenceClassifierModule,
        text_encoder: Any,
        config: dict,
        device: str | torch.device = "cpu",
    ):
        self.module = module
        self.text_encoder = text_encoder
        self.config = config
        self.labels: list[str] = list(config["labels"])
        self.max_tokens: int = int(config["max_tokens"])
        self.device = torch.device(device)
        self.module.to(self.device).eval()

    @property
    def backbone(self) -> str:
        return self.config["backbone"]

    def to(self, device: str | torch.device) -> Classifier:
        self.device = torch.device(device)
        self.module.to(self.device)
        return self

    def state_to_save(self) -> dict[str, torch.Tensor]:
        return get_backbone(self.backbone).state_to_save(self.module)

    def logits_of_ids(
        self,
        seqs: Sequence[np.ndarray],
        batch_size: int = 1024,
        on_batch: Callable[[int], None] | None = None,
    ) -> torch.Tensor:
        """Logits [N, num_labels] (on CPU) for already tokenised texts; `on_batch(n)` is called
        after each batch of n texts (progress)."""
        out = []
        self.module.eval()
        with torch.inference_mode():
            for start in range(0, len(seqs), batch_size):
                part = seqs[start : start + batch_size]
                batch = self.text_encoder.collate(part)
                batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
                out.append(self.module(batch).float().cpu())
                if on_batch is not None:
                    on_batch(len(part))
        if not out:
            return torch.zeros((0, len(self.labels)))
        return torch.cat(out)

    def predict_proba(
        self,
        texts: Sequence[str],
        batch_size: int = 1024,
        on_batch: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Class probabilities, shape (len(texts), len(labels)); any string is valid input."""
        seqs = self.text_encoder.tokenize(list(texts), self.max_tokens)
        logits = self.logits_of_ids(seqs, batch_size, on_batch)
        return torch.softmax(logits, dim=-1).numpy()

    def predict(self, texts: Sequence[str]) -> list[str]:
        """The most likely label of each text."""
        probs = self.predict_proba(texts)
        return [self.labels[i] for i in probs.argmax(axis=1)]
