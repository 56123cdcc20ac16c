"""Training loop: shuffled mini-batches, a dev split, early stopping on dev macro-F1.

`train(...)` keeps no global state: it seeds a forked copy of torch's RNG (restored on exit) and
a local numpy Generator, so it can run in a worker process or beside a serving `Predictor`.
The same data, config and device give identical weights.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import math
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from classifier.metrics import EvalReport, report_from_indices
from classifier.model import Classifier, make_config
from classifier.modules import get_backbone

log = logging.getLogger(__name__)

OnEpoch = Callable[[int, int, float], None]


@dataclass
class TrainConfig:
    """Hyper-parameters; defaults tuned on the shared SemEval → TweetEval benchmark
    (`benchmarks/classifier.py`): lr 0.01 with linear decay over 5 epochs, class-balanced loss,
    no bigrams scored 0.652 macro-F1 against 0.634-0.640 for the unbalanced variants."""

    backbone: str = "embedding"
    epochs: int = 5  # budget; the lr decays linearly over it and early stopping may end sooner
    batch_size: int = 64
    lr: float = 0.01  # SparseAdam (embedding table); AdamW (head) uses head_lr or lr
    head_lr: float | None = None
    encoder_lr: float | None = None  # BERT finetune: the encoder's rate (None: the backbone's)
    seed: int = 0
    dev_fraction: float = 0.1
    patience: int = 2  # epochs without dev macro-F1 improvement before stopping
    # Reweight the loss by inverse label frequency (normalised to mean 1), on top of `weights`:
    # macro-F1 counts every label equally, so rare labels deserve more than their share.
    balance_classes: bool = True
    lr_decay: bool = True  # linear decay to 0 over `epochs` (fastText's), where the backbone allows
    max_tokens: int = 256
    embedding_dim: int = 64
    dropout: float = 0.2
    min_freq: int = 1
    max_vocab: int | None = 200_000
    # Hashed word bigrams (fastText style) are supported but off: on the shared SemEval →
    # TweetEval benchmark 100k buckets cost 0.015-0.03 macro-F1 in every paired run (they overfit
    # the training tweets) and a third more training time.
    bigram_buckets: int = 0
    # Negation scope marking (`classifier.tokenizer`): words up to this many after "not"/"n't"/…
    # become `not_<word>` tokens; 0 = off. Embedding backbone only; saved in vocab.json.
    negation_scope: int = 0
    bert_path: str | None = None
    bert_mode: str = "auto"
    # Frozen BERT only: a folder keeping the encoder's pooled vectors between runs
    # (`classifier.bert_features`), so a retrain encodes only texts it has not seen. A place on
    # this machine, not part of the recipe: the bot sets DATA_DIR/cache/bert-features.
    feature_cache: str | None = None
    device: str = "cpu"
    # torch intra-op threads while training; None = the backbone's choice (1 for the embedding
    # backbone: its ops are tiny, and thread hand-offs cost more than they save, badly so when
    # other processes compete for the cores). Restored afterwards.
    num_threads: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainResult:
    classifier: Classifier
    dev_report: EvalReport
    manifest: dict
    epochs_run: int
    best_epoch: int = 0
    history: list[float] = field(default_factory=list)  # dev macro-F1 per epoch
    seconds: float = 0.0


def data_manifest(texts: Sequence[str], labels: Sequence[str], label_names: Sequence[str]) -> dict:
    """Rows per label and a SHA-256 over the (text, label) pairs in order."""
    digest = hashlib.sha256()
    for text, label in zip(texts, labels, strict=True):
        digest.update(text.encode("utf-8", "surrogatepass"))
        digest.update(b"\x1f")
        digest.update(label.encode("utf-8"))
        digest.update(b"\x1e")
    counts = Counter(labels)
    return {
        "rows": len(texts),
        "rows_per_label": {label: counts.get(label, 0) for label in label_names},
        "sha256": digest.hexdigest(),
    }


def _label_ids(labels: Sequence[str | int], label_names: Sequence[str]) -> np.ndarray:
    index = {name: i for i, name in enumerate(label_names)}
    out = np.empty(len(labels), dtype=np.int64)
    for row, label in enumerate(labels):
        if isinstance(label, (int, np.integer)) and not isinstance(label, bool):
            if not 0 <= label < len(label_names):
                raise ValueError(f"label index {label} out of range (row {row})")
            out[row] = label
        elif label in index:
            out[row] = index[label]
        else:
            raise ValueError(f"unknown label {label!r} at row {row} (expected {list(label_names)})")
    return out


def _split_dev(
    n: int, y: np.ndarray, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified random split: about `fraction` of each label's rows go to dev."""
    train_idx, dev_idx = [], []
    for label in np.unique(y):
        rows = rng.permutation(np.flatnonzero(y == label))
        k = int(round(len(rows) * fraction)) if len(rows) >= 5 else 0
        dev_idx.append(rows[:k])
        train_idx.append(rows[k:])
    return np.sort(np.concatenate(train_idx)), np.sort(np.concatenate(dev_idx))


def effective_batch_size(rows: int, batch_size: int, min_steps: int = 8) -> int:
    """Shrink the batch on small data so an epoch has at least `min_steps` optimiser steps.

    A few dozen user labels at batch 64 would give one step per epoch and a model that barely
    moves from uniform before early stopping ends it.
    """
    return max(1, min(batch_size, math.ceil(rows / min_steps)))


def _class_balance(y: np.ndarray, w: np.ndarray, num_labels: int) -> np.ndarray:
    """Per-label factors that give every present label the same total loss weight.

    Computed from the *weighted* counts, so caller weights that already balance the labels
    (the bootstrap corpus does) are left as they are. Factors average 1 over the rows.
    """
    totals = np.bincount(y, weights=w, minlength=num_labels).astype(np.float64)
    present = totals > 0
    factors = np.zeros(num_labels, dtype=np.float64)
    factors[present] = totals[present].sum() / (present.sum() * totals[present])
    return factors.astype(np.float32)


def _progress_enabled(progress: bool | None) -> bool:
    if progress is not None:
        return progress
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def train(
    texts: Sequence[str],
    labels: Sequence[str | int],
    label_names: Sequence[str],
    config: TrainConfig | None = None,
    *,
    weights: Sequence[float] | None = None,
    dev: tuple[Sequence[str], Sequence[str | int]] | None = None,
    on_epoch: OnEpoch | None = None,
    progress: bool | None = None,
) -> TrainResult:
    """Train a classifier over `label_names` (≥ 2) on `texts` / `labels` (names or indices).

    `weights`: per-example loss weights. `dev`: explicit dev set; otherwise a stratified
    `config.dev_fraction` is carved from the training data (too little data → no dev split: the
    full epoch budget runs and the dev report is on the training data). `on_epoch(epoch, epochs,
    dev_macro_f1)` is called after every epoch. `progress`: tqdm bar (default: stderr is a TTY).
    """
    config = config or TrainConfig()
    label_names = list(label_names)
    if len(label_names) < 2 or len(set(label_names)) != len(label_names):
        raise ValueError(f"need at least 2 distinct labels, got {label_names}")
    if len(texts) != len(labels) or not texts:
        raise ValueError(
            f"need texts and labels of equal, non-zero length ({len(texts)}, {len(labels)})"
        )
    if weights is not None and len(weights) != len(texts):
        raise ValueError(f"{len(weights)} weights for {len(texts)} texts")
    _check_config(config)
    started = time.perf_counter()
    threads = config.num_threads or get_backbone(config.backbone).train_threads
    previous_threads = torch.get_num_threads()
    try:
        if threads:
            torch.set_num_threads(threads)
        # manual_seed also reseeds CUDA: fork the training GPU's generator too, so the
        # caller's RNG state is restored on every device training touched.
        device = torch.device(config.device)
        gpus = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=gpus):
            torch.manual_seed(config.seed)
            result = _train(texts, labels, label_names, config, weights, dev, on_epoch, progress)
    finally:
        torch.set_num_threads(previous_threads)
    result.seconds = time.perf_counter() - started
    return result


def _check_config(config: TrainConfig) -> None:
    """Refuse settings that would crash deep inside training with an obscure error."""
    if config.epochs < 1 or config.batch_size < 1:
        raise ValueError(
            f"epochs and batch_size must be at least 1 ({config.epochs}, {config.batch_size})"
        )
    if config.seed < 0:  # numpy's default_rng refuses negative seeds
        raise ValueError(f"seed must be 0 or more, got {config.seed}")
    if not 0.0 <= config.dev_fraction < 1.0:
        raise ValueError(f"dev_fraction must be in [0, 1), got {config.dev_fraction}")


@dataclass
class _Data:
    """Training and dev rows as `_train` uses them (labels as ids, weights already balanced)."""

    texts: list[str]  # every input text, for the data manifest
    y_all: np.ndarray
    train_texts: list[str]
    y_train: torch.Tensor
    w_train: torch.Tensor
    dev_texts: list[str]
    y_dev: np.ndarray
    dev_source: str  # "explicit", "split" or "train" (no dev rows: report on the training data)


def _prepare_data(
    texts: Sequence[str],
    labels: Sequence[str | int],
    label_names: list[str],
    config: TrainConfig,
    weights: Sequence[float] | None,
    dev: tuple[Sequence[str], Sequence[str | int]] | None,
    rng: np.random.Generator,
) -> _Data:
    """Label ids, the dev split (drawn from `rng`) and class-balanced per-row weights."""
    texts = list(texts)
    y_all = _label_ids(labels, label_names)
    w_all = (
        np.ones(len(texts), dtype=np.float32)
        if weights is None
        else np.asarray(weights, np.float32)
    )
    dev_source = "explicit"
    if dev is not None:
        train_idx = np.arange(len(texts))
        dev_texts, y_dev = list(dev[0]), _label_ids(dev[1], label_names)
    else:
        train_idx, dev_idx = _split_dev(len(texts), y_all, config.dev_fraction, rng)
        dev_source = "split" if len(dev_idx) else "train"
        if not len(dev_idx):
            dev_idx = train_idx
        dev_texts, y_dev = [texts[i] for i in dev_idx], y_all[dev_idx]
    if config.balance_classes:
        balance = _class_balance(y_all[train_idx], w_all[train_idx], len(label_names))
        w_all = w_all * balance[y_all]
    return _Data(
        texts=texts,
        y_all=y_all,
        train_texts=[texts[i] for i in train_idx],
        y_train=torch.from_numpy(y_all[train_idx]),
        w_train=torch.from_numpy(w_all[train_idx]),
        dev_texts=dev_texts,
        y_dev=y_dev,
        dev_source=dev_source,
    )


def _build_model(
    train_texts: list[str], label_names: list[str], config: TrainConfig
) -> tuple[Classifier, list[torch.optim.Optimizer], list[Any]]:
    """Fit the text encoder, build the module (torch RNG: weight init) and its optimisers."""
    backbone = get_backbone(config.backbone)
    device = torch.device(config.device)
    text_encoder = backbone.fit_text_encoder(train_texts, config)
    args = backbone.encoder_args(text_encoder, config)
    model_config = make_config(config.backbone, label_names, args, max_tokens=config.max_tokens)
    module = backbone.build_module(args, len(label_names)).to(device)
    classifier = Classifier(module, text_encoder, model_config, device)
    optimizers = backbone.make_optimizers(module, config)
    total_steps = config.epochs * math.ceil(
        len(train_texts) / effective_batch_size(len(train_texts), config.batch_size)
    )
    schedulers = []
    if config.lr_decay and backbone.linear_lr_decay:  # other backbones bring their own schedule
        schedulers = [
            torch.optim.lr_scheduler.LambdaLR(opt, lambda step: max(0.0, 1.0 - step / total_steps))
            for opt in optimizers
        ]
    return classifier, optimizers, schedulers


@dataclass
class _EarlyStopping:
    """Keeps the best epoch's weights; says when `patience` epochs brought no improvement."""

    patience: int
    enabled: bool  # off when dev is the training data: its F1 says nothing about overfitting
    best_f1: float = -1.0
    best_epoch: int = 0
    best_state: dict | None = None
    stale: int = 0
    history: list[float] = field(default_factory=list)

    def update(self, epoch: int, f1: float, module: torch.nn.Module) -> bool:
        """Record `epoch`'s dev macro-F1; True when training should stop."""
        self.history.append(f1)
        if f1 > self.best_f1:
            self.best_f1, self.best_epoch, self.stale = f1, epoch, 0
            self.best_state = copy.deepcopy(module.state_dict())
            return False
        self.stale += 1
        return self.enabled and self.stale >= self.patience

    def restore_best(self, module: torch.nn.Module) -> None:
        if self.best_state is not None:
            module.load_state_dict(self.best_state)


def _train(
    texts: Sequence[str],
    labels: Sequence[str | int],
    label_names: list[str],
    config: TrainConfig,
    weights: Sequence[float] | None,
    dev: tuple[Sequence[str], Sequence[str | int]] | None,
    on_epoch: OnEpoch | None,
    progress: bool | None,
) -> TrainResult:
    rng = np.random.default_rng(config.seed)
    data = _prepare_data(texts, labels, label_names, config, weights, dev, rng)
    classifier, optimizers, schedulers = _build_model(data.train_texts, label_names, config)
    # Tokenise once; every epoch only gathers and concatenates id arrays.
    seqs = classifier.text_encoder.tokenize(data.train_texts, config.max_tokens)
    dev_seqs = classifier.text_encoder.tokenize(data.dev_texts, config.max_tokens)
    use_bar = _progress_enabled(progress)
    stopper = _EarlyStopping(config.patience, enabled=data.dev_source != "train")
    epoch = 0
    for epoch in range(1, config.epochs + 1):
        _run_epoch(
            classifier,
            seqs,
            data.y_train,
            data.w_train,
            optimizers,
            schedulers,
            config,
            rng,
            epoch,
            use_bar,
        )
        f1 = _dev_report(classifier, dev_seqs, data.y_dev, label_names).macro_f1
        log.debug("epoch %d/%d: dev macro-F1 %.4f", epoch, config.epochs, f1)
        if on_epoch is not None:
            on_epoch(epoch, config.epochs, f1)
        if stopper.update(epoch, f1, classifier.module):
            break
    stopper.restore_best(classifier.module)
    classifier.module.eval()
    get_backbone(config.backbone).finish_training(classifier, config)
    return _make_result(classifier, data, label_names, config, weights, dev_seqs, epoch, stopper)


def _dev_report(
    classifier: Classifier, dev_seqs: list[Any], y_dev: np.ndarray, label_names: list[str]
) -> EvalReport:
    dev_pred = classifier.logits_of_ids(dev_seqs).argmax(dim=1).numpy()
    return report_from_indices(y_dev, dev_pred, label_names)


def _make_result(
    classifier: Classifier,
    data: _Data,
    label_names: list[str],
    config: TrainConfig,
    weights: Sequence[float] | None,
    dev_seqs: list[Any],
    epochs_run: int,
    stopper: _EarlyStopping,
) -> TrainResult:
    """The final dev report (best weights restored) and the data manifest saved with the model."""
    dev_report = _dev_report(classifier, dev_seqs, data.y_dev, label_names)
    manifest = data_manifest(data.texts, [label_names[i] for i in data.y_all], label_names)
    manifest.update(
        {
            "train_rows": len(data.train_texts),
            "dev_rows": len(data.dev_texts),
            "dev_source": data.dev_source,
            "weighted": weights is not None,
            "train_config": config.to_dict(),
        }
    )
    return TrainResult(
        classifier=classifier,
        dev_report=dev_report,
        manifest=manifest,
        epochs_run=epochs_run,
        best_epoch=stopper.best_epoch,
        history=stopper.history,
    )


def _run_epoch(
    classifier: Classifier,
    seqs: list[Any],
    y: torch.Tensor,
    w: torch.Tensor,
    optimizers: list[torch.optim.Optimizer],
    schedulers: list[Any],
    config: TrainConfig,
    rng: np.random.Generator,
    epoch: int,
    use_bar: bool,
) -> None:
    module, device, collate = classifier.module, classifier.device, classifier.text_encoder.collate
    module.train()
    order = rng.permutation(len(seqs))
    batch_size = effective_batch_size(len(order), config.batch_size)
    steps = math.ceil(len(order) / batch_size)
    bar = None
    if use_bar:
        from tqdm import tqdm

        bar = tqdm(total=steps, desc=f"epoch {epoch}/{config.epochs}", leave=False, unit="batch")
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        batch = {k: v.to(device) for k, v in collate([seqs[i] for i in idx]).items()}
        idx_t = torch.from_numpy(idx)
        weight = w[idx_t].to(device)
        losses = F.cross_entropy(module(batch), y[idx_t].to(device), reduction="none")
        loss = (losses * weight).sum() / weight.sum().clamp(min=1e-8)
        for opt in optimizers:
            opt.zero_grad(set_to_none=True)
        loss.backward()
        for opt in optimizers:
            opt.step()
        for scheduler in schedulers:
            scheduler.step()
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    module.eval()
