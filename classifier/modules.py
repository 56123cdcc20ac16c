"""Composable model parts (encoder → pooling → head) and the backbone registry.

A sentence classifier is `SentenceClassifierModule(encoder, MeanPooling(), LinearHead(...))`. The
parts pass a *features* dict along, as sentence-transformers' modules do:

- the encoder reads the batch made by its text encoder and adds either
  `token_embeddings` [B, T, D] + `attention_mask` [B, T] (1 = real token), or, when it can fuse
  pooling into the lookup (EmbeddingBag), `sentence_embedding` [B, D] directly;
- `MeanPooling` turns token embeddings into `sentence_embedding` = masked sum / real-token count
  (so padding never changes the result), and passes a ready `sentence_embedding` through;
- `LinearHead` applies dropout and a linear layer → logits [B, num_labels].

Encoder protocol (what a backbone provides; see `Backbone` and `BackboneRun`):

- a *text encoder* with `tokenize(texts, max_tokens) -> list[np.ndarray]` (ids per text, done once
  per dataset), `collate(seqs) -> dict[str, Tensor]` (one batch), `save(folder)` writing the files
  named in `Backbone.text_encoder_files` (`vocab.json` here, `tokenizer/` for BERT);
- an `nn.Module` encoder with an `output_dim` attribute and `forward(features) -> features`.

Backbones register themselves with `register_backbone`; `get_backbone("bert")` imports
`classifier.bert` lazily so transformers is only loaded when the BERT backbone is used.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.optim.lr_scheduler import LambdaLR, LRScheduler

from classifier.tokenizer import Vocab, tokenize

if TYPE_CHECKING:
    from classifier.recipe import RunSettings, TrainRecipe

Features = dict[str, Tensor]


# --- modules ------------------------------------------------------------------------------------
class EmbeddingEncoder(nn.Module):
    """A token embedding table (words + hashed bigrams); row 0 is `<pad>` and stays zero."""

    def __init__(self, vocab_size: int, embedding_dim: int, sparse: bool = True):
        super().__init__()
        self.vocab_size, self.output_dim, self.sparse = vocab_size, embedding_dim, sparse
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=0, sparse=sparse)
        # fastText-style init: small uniform values keep the early mean vectors near zero.
        nn.init.uniform_(self.embedding.weight, -1.0 / embedding_dim, 1.0 / embedding_dim)
        with torch.no_grad():
            self.embedding.weight[0].zero_()

    def forward(self, features: Features) -> Features:
        weight = self.embedding.weight
        if "offsets" in features:
            # Flat ids + offsets: lookup and mean pooling fused, touching only the rows used.
            # An empty text (no tokens) yields a zero vector, like MeanPooling's clamp below.
            pooled = F.embedding_bag(
                features["input_ids"], weight, features["offsets"], mode="mean", sparse=self.sparse
            )
            return {**features, "sentence_embedding": pooled}
        ids = features["input_ids"]  # [B, T]
        tokens = F.embedding(ids, weight, padding_idx=0, sparse=self.sparse)  # [B, T, D]
        mask = features.get("attention_mask", (ids != 0).long())
        return {**features, "token_embeddings": tokens, "attention_mask": mask}


class MeanPooling(nn.Module):
    """Masked mean over real tokens: sum(emb * mask) / max(count, 1)."""

    def forward(self, features: Features) -> Features:
        if "sentence_embedding" in features:
            return features
        tokens = features["token_embeddings"]  # [B, T, D]
        mask = features["attention_mask"].unsqueeze(-1).to(tokens.dtype)  # [B, T, 1]
        summed = (tokens * mask).sum(dim=1)  # [B, D]
        counts = mask.sum(dim=1).clamp(min=1.0)  # [B, 1]
        return {**features, "sentence_embedding": summed / counts}


class LinearHead(nn.Module):
    """Dropout then a linear layer over the label list → logits [B, num_labels]."""

    def __init__(self, in_dim: int, num_labels: int, dropout: float = 0.0):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(in_dim, num_labels)

    def forward(self, features: Features) -> Tensor:
        return self.linear(self.dropout(features["sentence_embedding"]))


class SentenceClassifierModule(nn.Module):
    """encoder → pooling → head; `forward(batch) -> logits`."""

    def __init__(self, encoder: nn.Module, pooling: nn.Module, head: nn.Module):
        super().__init__()
        self.encoder, self.pooling, self.head = encoder, pooling, head

    def forward(self, features: Features) -> Tensor:
        return self.head(self.pooling(self.encoder(features)))


# --- text encoder for the embedding backbone ----------------------------------------------------
class WordTextEncoder:
    """Turns texts into vocabulary ids; batches are flat ids + offsets (no padding at all)."""

    files = ("vocab.json",)

    def __init__(self, vocab: Vocab, fitted_tokens: dict[str, list[str]] | None = None):
        self.vocab = vocab
        # Token lists of the texts the vocabulary was fitted on, so training tokenises each text
        # once; used (and dropped) by the first `tokenize` call.
        self._fitted_tokens = fitted_tokens

    def tokenize(self, texts: Sequence[str], max_tokens: int | None = None) -> list[np.ndarray]:
        cache, self._fitted_tokens = self._fitted_tokens, None
        if cache:
            encode_tokens = self.vocab.encode_tokens
            return [
                encode_tokens(cache[t], max_tokens)
                if t in cache
                else self.vocab.encode(t, max_tokens)
                for t in texts
            ]
        encode = self.vocab.encode
        return [encode(text, max_tokens) for text in texts]

    def collate(self, seqs: Sequence[np.ndarray]) -> Features:
        lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
        offsets = np.zeros(len(seqs), dtype=np.int64)
        np.cumsum(lengths[:-1], out=offsets[1:])
        flat = np.concatenate(seqs) if len(seqs) else np.zeros(0, dtype=np.int64)
        return {"input_ids": torch.from_numpy(flat), "offsets": torch.from_numpy(offsets)}

    def collate_padded(self, seqs: Sequence[np.ndarray], pad_to: int | None = None) -> Features:
        """[B, T] ids + mask: the classic padded layout (used by tests and other encoders)."""
        width = max([len(s) for s in seqs] + [pad_to or 0, 1])
        ids = np.zeros((len(seqs), width), dtype=np.int64)
        for row, seq in enumerate(seqs):
            ids[row, : len(seq)] = seq
        ids_t = torch.from_numpy(ids)
        return {"input_ids": ids_t, "attention_mask": (ids_t != 0).long()}

    def save(self, folder: Path) -> None:
        self.vocab.save(folder / "vocab.json")


# --- backbones ----------------------------------------------------------------------------------
class BackboneRun:
    """One training run of a backbone: what `Backbone.start_training` fitted for it.

    Per-run state lives here (the BERT backbone keeps its loaded encoder and the encoded training
    texts), so a registered backbone holds none and two runs never see each other's.
    """

    def __init__(self, text_encoder: Any, args: dict):
        self.text_encoder = text_encoder
        self.args = args  # the encoder's constructor args, saved as config.json's `args`

    def build_module(self, num_labels: int) -> SentenceClassifierModule:
        """The untrained module (torch RNG: weight init)."""
        raise NotImplementedError

    def optimizers(
        self, module: SentenceClassifierModule, total_steps: int
    ) -> tuple[list[torch.optim.Optimizer], list[LRScheduler]]:
        """Optimisers and their learning-rate schedules (stepped once per batch) for a run of
        `total_steps` batches."""
        raise NotImplementedError

    def finish(self, classifier: Any) -> None:
        """Called once when training ends (best weights restored), before the result is made."""


class Backbone:
    """How one kind of encoder is trained, built, saved and loaded.

    Subclass, set `name` / `text_encoder_files`, override what differs, and call
    `register_backbone(MyBackbone())` at import time of your module.
    """

    name = ""
    text_encoder_files: tuple[str, ...] = ()
    train_threads: int | None = None  # torch threads while training (None: leave as is)
    inference_threads: int | None = None  # torch threads of the Predictor's worker (None: default)

    def start_training(
        self, texts: Sequence[str], recipe: TrainRecipe, run: RunSettings
    ) -> BackboneRun:
        """Fit the text encoder on the training `texts`; the run builds and optimises the rest."""
        raise NotImplementedError

    def load_text_encoder(self, folder: Path, args: dict) -> Any:
        """Load the text encoder saved in `folder`; raise ValueError/OSError on bad files."""
        raise NotImplementedError

    def build_module(self, args: dict, num_labels: int) -> SentenceClassifierModule:
        raise NotImplementedError

    def state_to_save(self, module: SentenceClassifierModule) -> dict[str, Tensor]:
        """Tensors written to model.safetensors (a frozen encoder may leave itself out)."""
        return {k: v.detach().contiguous() for k, v in module.state_dict().items()}

    def load_state(self, module: SentenceClassifierModule, tensors: dict[str, Tensor]) -> None:
        """Load `tensors`; raise ValueError naming missing/unexpected keys or bad shapes."""
        check_tensors(module.state_dict(), tensors)
        module.load_state_dict(tensors)


class EmbeddingBackbone(Backbone):
    """Word + hashed-bigram embedding table, mean-pooled; the fast default backbone."""

    name = "embedding"
    text_encoder_files = ("vocab.json",)
    train_threads = 1
    inference_threads = 1

    def start_training(
        self, texts: Sequence[str], recipe: TrainRecipe, run: RunSettings
    ) -> _EmbeddingRun:
        scope = recipe.negation_scope
        tokens = {text: tokenize(text, negation_scope=scope) for text in texts}
        vocab = Vocab.build_from_tokens(
            (tokens[text] for text in texts),
            min_freq=recipe.min_freq,
            max_size=recipe.max_vocab,
            bigram_buckets=recipe.bigram_buckets,
            negation_scope=scope,
        )
        return _EmbeddingRun(self, WordTextEncoder(vocab, fitted_tokens=tokens), recipe)

    def load_text_encoder(self, folder: Path, args: dict) -> WordTextEncoder:
        vocab = Vocab.load(folder / "vocab.json")
        if vocab.size != args.get("vocab_size"):
            raise ValueError(
                f"has {vocab.size} rows (words + bigram buckets), config.json says "
                f"vocab_size={args.get('vocab_size')}"
            )
        return WordTextEncoder(vocab)

    def build_module(self, args: dict, num_labels: int) -> SentenceClassifierModule:
        encoder = EmbeddingEncoder(int(args["vocab_size"]), int(args["embedding_dim"]))
        head = LinearHead(encoder.output_dim, num_labels, float(args.get("dropout", 0.0)))
        return SentenceClassifierModule(encoder, MeanPooling(), head)


class _EmbeddingRun(BackboneRun):
    def __init__(
        self, backbone: EmbeddingBackbone, text_encoder: WordTextEncoder, recipe: TrainRecipe
    ):
        args = {
            "vocab_size": text_encoder.vocab.size,
            "embedding_dim": recipe.embedding_dim,
            "dropout": recipe.dropout,
        }
        super().__init__(text_encoder, args)
        self.backbone, self.recipe = backbone, recipe

    def build_module(self, num_labels: int) -> SentenceClassifierModule:
        return self.backbone.build_module(self.args, num_labels)

    def optimizers(
        self, module: SentenceClassifierModule, total_steps: int
    ) -> tuple[list[torch.optim.Optimizer], list[LRScheduler]]:
        # The table gets sparse gradients (only the rows of this batch's tokens), which AdamW
        # cannot take; SparseAdam updates just those rows — the fastText speed trick. The small
        # dense rest (the head) uses AdamW with weight decay as usual.
        lr = self.recipe.lr
        sparse = [module.encoder.embedding.weight]
        dense = [p for n, p in module.named_parameters() if not n.startswith("encoder.")]
        optimizers = [
            torch.optim.SparseAdam(sparse, lr=lr),
            torch.optim.AdamW(dense, lr=self.recipe.head_lr or lr, weight_decay=1e-4),
        ]
        if not self.recipe.lr_decay:
            return optimizers, []
        # fastText's schedule: linear decay to 0 over the whole budget.
        schedules = [
            LambdaLR(opt, lambda step: max(0.0, 1.0 - step / total_steps)) for opt in optimizers
        ]
        return optimizers, schedules


_BACKBONES: dict[str, Backbone] = {}
# Backbones living in optional modules: imported on first use.
_LAZY_BACKBONES = {"bert": "classifier.bert"}


def register_backbone(backbone: Backbone) -> None:
    _BACKBONES[backbone.name] = backbone


def get_backbone(name: str) -> Backbone:
    """The registered backbone called `name` (imports optional ones lazily); KeyError if none."""
    if name not in _BACKBONES and name in _LAZY_BACKBONES:
        importlib.import_module(_LAZY_BACKBONES[name])
    if name not in _BACKBONES:
        known = sorted(set(_BACKBONES) | set(_LAZY_BACKBONES))
        raise KeyError(f"unknown backbone {name!r} (known: {', '.join(known)})")
    return _BACKBONES[name]


def build_model(config: dict) -> SentenceClassifierModule:
    """The untrained module a saved `config.json` describes (dispatch on `config["backbone"]`)."""
    return get_backbone(config["backbone"]).build_module(config["args"], len(config["labels"]))


register_backbone(EmbeddingBackbone())


def check_tensors(expected: dict[str, Tensor], tensors: dict[str, Tensor]) -> None:
    """Refuse a weights file whose tensor names or shapes differ from what config.json builds."""
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise ValueError(f"tensor names differ (missing {missing}, unexpected {unexpected})")
    for key, tensor in tensors.items():
        if tuple(tensor.shape) != tuple(expected[key].shape):
            raise ValueError(
                f"tensor {key} has shape {tuple(tensor.shape)}, config.json implies "
                f"{tuple(expected[key].shape)}"
            )
