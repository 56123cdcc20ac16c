"""The BERT backbone's text encoder (tokenizer) and encoder module (encoder + mean pooling).

Inference: the encoder sorts each batch by length and runs sub-batches padded only to their own
longest text (capped by a token budget), under `torch.inference_mode()` and bf16 autocast on
CUDA; a CUDA out-of-memory error halves the sub-batch and retries. While a frozen encoder trains,
it caches each text's pooled vector, so every distinct text is encoded once per run.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from classifier.bert_features import text_key
from classifier.modules import Features, LinearHead, MeanPooling, SentenceClassifierModule

log = logging.getLogger(__name__)

MODES = ("frozen", "finetune")
TOKENIZER_DIR = "tokenizer"
# Inference sub-batches: at most this many texts, and rows × padded length at most this many
# tokens (long texts form smaller batches, so memory stays bounded).
BATCH_ROWS = {"cpu": 64, "cuda": 512}
BATCH_TOKENS = {"cpu": 8_192, "cuda": 131_072}
# Frozen-mode feature cache: bounded so an in-memory classifier cannot grow without limit.
CACHE_MAX_BYTES = 1 << 30

_URL_RE = re.compile(r"(?:https?://|www\.)\S+")
_USER_RE = re.compile(r"(?<!\w)@\w+")


# --- text encoder -----------------------------------------------------------------------------
class BertTextEncoder:
    """Hugging Face tokenizer → ids per text; batches are padded to their longest text."""

    files = (TOKENIZER_DIR,)

    def __init__(self, tokenizer: Any, max_positions: int):
        self.tokenizer = tokenizer
        self.max_positions = int(max_positions)
        pad = tokenizer.pad_token_id
        self.pad_id = 0 if pad is None else int(pad)
        # Fast tokenizers keep truncation state inside: one caller at a time.
        self._lock = threading.Lock()

    @staticmethod
    def normalize(text: str) -> str:
        """Mask @mentions and URLs the way tweet models do: they carry no sentiment."""
        return _USER_RE.sub("@user", _URL_RE.sub("http", text))

    def tokenize(self, texts: Sequence[str], max_tokens: int | None = None) -> list[np.ndarray]:
        limit = min(int(max_tokens or self.max_positions), self.max_positions)
        texts = [self.normalize(t) for t in texts]
        if not texts:
            return []
        with self._lock:
            ids = self.tokenizer(
                texts,
                truncation=True,
                max_length=limit,
                return_attention_mask=False,
                return_token_type_ids=False,
            )["input_ids"]
        return [np.asarray(row, dtype=np.int64) for row in ids]

    def collate(self, seqs: Sequence[np.ndarray]) -> Features:
        width = max([len(s) for s in seqs] + [1])
        ids = np.full((len(seqs), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(seqs), width), dtype=np.int64)
        for row, seq in enumerate(seqs):
            ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
        return {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask)}

    def save(self, folder: Path) -> None:
        self.tokenizer.save_pretrained(str(folder / TOKENIZER_DIR))


# --- the encoder module ---------------------------------------------------------------------------
class BertEncoder(nn.Module):
    """A Hugging Face encoder that returns mean-pooled `sentence_embedding` [B, H].

    Pooling happens here, per sub-batch, with the shared `MeanPooling` (the model's own
    `MeanPooling` then passes the ready vector through), because inference re-orders each batch
    by length into sub-batches padded only to their own longest text.
    """

    def __init__(self, model: nn.Module, frozen: bool):
        super().__init__()
        self.model = model
        self.frozen = frozen
        self.output_dim = int(model.config.hidden_size)
        self.pool = MeanPooling()
        self.max_rows: int | None = None  # sub-batch size limit (None: per-device default)
        self.max_batch_tokens: int | None = None
        self._cache: dict[bytes, Tensor] | None = None
        self._cache_bytes = 0
        # Vectors from the on-disk feature store (by `text_key`), consulted on cache misses.
        self._stored: dict[bytes, Tensor] = {}
        if frozen:
            self.model.requires_grad_(False)

    def train(self, mode: bool = True) -> BertEncoder:
        super().train(mode)
        if self.frozen:
            self.model.eval()  # a fixed encoder never uses dropout: cached vectors stay valid
        return self

    # --- frozen-mode cache -------------------------------------------------------------------
    def enable_cache(
        self, encoded: dict[bytes, Tensor] | None = None, stored: dict[bytes, Tensor] | None = None
    ) -> None:
        """Remember each text's pooled vector (frozen mode, during training), starting with the
        `encoded` ones (by token ids); `stored` are the feature store's (by `text_key`)."""
        if self.frozen and self._cache is None:
            self._cache, self._cache_bytes = {}, 0
            self._cache.update(encoded or {})
            self._stored = stored or {}

    def release_cache(self) -> None:
        self._cache, self._cache_bytes, self._stored = None, 0, {}

    # --- forward -------------------------------------------------------------------------------
    def forward(self, features: Features) -> Features:
        ids, mask = features["input_ids"], features["attention_mask"]
        width = int(mask.sum(dim=1).max().item()) if mask.numel() else 0
        ids, mask = ids[:, : max(width, 1)], mask[:, : max(width, 1)]
        if torch.is_grad_enabled() and not self.frozen:
            pooled = self._pooled(ids, mask)  # fine-tuning: one differentiable pass
        elif self._cache is not None:
            pooled = self._cached(ids, mask)
        else:
            with torch.no_grad():
                pooled = self._sorted(ids, mask)
        return {**features, "sentence_embedding": pooled}

    def _pooled(self, ids: Tensor, mask: Tensor) -> Tensor:
        """[B, T] ids + mask → [B, H] float32 mean of the last hidden states over real tokens."""
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=ids.device.type == "cuda"):
            hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state
        out = self.pool({"token_embeddings": hidden.float(), "attention_mask": mask})
        return out["sentence_embedding"]

    def _sorted(self, ids: Tensor, mask: Tensor) -> Tensor:
        """Pooled vectors computed in length-sorted sub-batches (OOM on CUDA: halve, retry)."""
        out = torch.empty((ids.shape[0], self.output_dim), device=ids.device)
        if ids.shape[0] == 0:
            return out
        kind = "cuda" if ids.device.type == "cuda" else "cpu"
        max_rows = self.max_rows or BATCH_ROWS[kind]
        budget = self.max_batch_tokens or BATCH_TOKENS[kind]
        lengths = mask.sum(dim=1)
        order = torch.argsort(lengths, stable=True).tolist()
        lengths_sorted = lengths[order].tolist()
        start = 0
        while start < len(order):
            rows = min(max_rows, max(1, budget // max(int(lengths_sorted[start]), 1)))
            # The longest text of this sub-batch sets its width: shrink until it fits the budget.
            end = min(start + rows, len(order))
            while end - start > 1 and (end - start) * int(lengths_sorted[end - 1]) > budget:
                end = start + max(1, (end - start) // 2)
            pick = torch.tensor(order[start:end], device=ids.device)
            width = int(lengths_sorted[end - 1]) or 1
            try:
                out[pick] = self._pooled(ids[pick, :width], mask[pick, :width])
            except torch.cuda.OutOfMemoryError:
                if end - start == 1:
                    raise
                torch.cuda.empty_cache()
                max_rows = max(1, (end - start) // 2)
                self.max_rows = max_rows  # remember: the next batches start at the smaller size
                log.warning(
                    "CUDA out of memory at %d texts per batch; retrying with %d",
                    end - start,
                    max_rows,
                )
                continue
            start = end
        return out

    def _cached(self, ids: Tensor, mask: Tensor) -> Tensor:
        """Like `_sorted`, but each distinct text is encoded only once per training run."""
        assert self._cache is not None
        host_ids, lengths = ids.cpu().numpy(), mask.sum(dim=1).cpu().tolist()
        keys = [host_ids[row, : int(n)].tobytes() for row, n in enumerate(lengths)]
        if self._stored:
            self._take_stored(keys, ids.device)
        missing = [row for row, key in enumerate(keys) if key not in self._cache]
        if missing:
            pick = torch.tensor(missing, device=ids.device)
            with torch.no_grad():
                fresh = self._sorted(ids[pick], mask[pick])
            per_row = fresh.element_size() * fresh.shape[1]
            for row, vector in zip(missing, fresh, strict=True):
                if self._cache_bytes + per_row > CACHE_MAX_BYTES:
                    break
                self._cache[keys[row]] = vector
                self._cache_bytes += per_row
            found = {row: vec for row, vec in zip(missing, fresh, strict=True)}
        else:
            found = {}
        return torch.stack([found[r] if r in found else self._cache[k] for r, k in enumerate(keys)])

    def _take_stored(self, keys: list[bytes], device: torch.device) -> None:
        """Move the stored vectors of these texts (e.g. dev texts) into the cache."""
        assert self._cache is not None
        for key in keys:
            if key not in self._cache:
                vector = self._stored.get(text_key(key))
                if vector is not None:
                    self._cache[key] = vector.to(device)


def assemble_module(model: nn.Module, args: dict, num_labels: int) -> SentenceClassifierModule:
    """encoder → pooling → head around the Hugging Face `model`, as config.json's `args` say."""
    if int(model.config.hidden_size) != int(args["hidden_size"]):
        raise ValueError(f"encoder hidden size {model.config.hidden_size} ≠ {args['hidden_size']}")
    encoder = BertEncoder(model, frozen=args["mode"] == "frozen")
    head = LinearHead(encoder.output_dim, num_labels, float(args.get("dropout", 0.0)))
    return SentenceClassifierModule(encoder, MeanPooling(), head)
