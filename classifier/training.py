"""Training loop: shuffled mini-batches, a dev split, early stopping on dev macro-F1.

`train(...)` keeps no global state: it seeds a forked copy of torch's RNG (restored on exit) and
a local numpy Generator, so it can run in a worker process or beside a serving `Predictor`.
The same data, recipe and device give identical weights.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from classifier.card import ModelCard, TrainingLog
from classifier.metrics import EvalReport, report_from_indices
from classifier.model import Classifier, make_config
from classifier.modules import BackboneRun, get_backbone
from classifier.progress import progress
from classifier.recipe import RunSettings, TrainRecipe
from classifier.training_data import TrainingData, effective_batch_size, prepare_data

log = logging.getLogger(__name__)

OnEpoch = Callable[[int, int, float], None]


@dataclass
class TrainResult:
    classifier: Classifier
    dev_report: EvalReport
    manifest: dict  # the data manifest (`TrainingData.manifest`)
    epochs_run: int
    recipe: TrainRecipe
    best_epoch: int = 0
    history: list[float] = field(default_factory=list)  # dev macro-F1 per epoch
    seconds: float = 0.0

    def card(self, kind: str, **fields: Any) -> ModelCard:
        """The model card of this run's model; `fields` add the rest (eval, origin, …) or
        replace what the run knows (data, dev)."""
        training = TrainingLog(
            epochs_run=self.epochs_run,
            best_epoch=self.best_epoch,
            seconds=round(self.seconds, 2),
            dev_curve=[{"epoch": i, "dev_macro_f1": f} for i, f in enumerate(self.history, 1)],
        )
        known = {
            "recipe": self.recipe.to_dict(),
            "data": dict(self.manifest),
            "dev": self.dev_report.to_dict(),
            "training": training,
        }
        return ModelCard(kind=kind, **{**known, **fields})


def train(
    texts: Sequence[str],
    labels: Sequence[str | int],
    label_names: Sequence[str],
    recipe: TrainRecipe | None = None,
    *,
    run: RunSettings | None = None,
    weights: Sequence[float] | None = None,
    dev: tuple[Sequence[str], Sequence[str | int]] | None = None,
    on_epoch: OnEpoch | None = None,
) -> TrainResult:
    """Train a classifier over `label_names` (≥ 2) on `texts` / `labels` (names or indices).

    `recipe`: the hyper-parameters (saved in the model card); `run`: this machine's settings
    (device, threads, feature cache, progress bar; never saved). `weights`: per-example loss
    weights. `dev`: explicit dev set; otherwise a stratified `recipe.dev_fraction` is carved from
    the training data (too little data → no dev split: the full epoch budget runs and the dev
    report is on the training data). `on_epoch(epoch, epochs, dev_macro_f1)` is called after
    every epoch.
    """
    recipe, run = recipe or TrainRecipe(), run or RunSettings()
    label_names = list(label_names)
    if len(label_names) < 2 or len(set(label_names)) != len(label_names):
        raise ValueError(f"need at least 2 distinct labels, got {label_names}")
    if len(texts) != len(labels) or not texts:
        raise ValueError(
            f"need texts and labels of equal, non-zero length ({len(texts)}, {len(labels)})"
        )
    if weights is not None and len(weights) != len(texts):
        raise ValueError(f"{len(weights)} weights for {len(texts)} texts")
    recipe.check()
    started = time.perf_counter()
    threads = run.threads or get_backbone(recipe.backbone).train_threads
    previous_threads = torch.get_num_threads()
    try:
        if threads:
            torch.set_num_threads(threads)
        # manual_seed also reseeds CUDA: fork the training GPU's generator too, so the
        # caller's RNG state is restored on every device training touched.
        device = torch.device(run.device)
        gpus = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=gpus):
            torch.manual_seed(recipe.seed)
            rng = np.random.default_rng(recipe.seed)
            data = prepare_data(texts, labels, label_names, recipe, weights, dev, rng)
            result = _train(data, label_names, recipe, run, rng, on_epoch)
    finally:
        torch.set_num_threads(previous_threads)
    result.seconds = time.perf_counter() - started
    return result


def _build_model(
    train_texts: list[str], label_names: list[str], recipe: TrainRecipe, run: RunSettings
) -> tuple[Classifier, BackboneRun, list[torch.optim.Optimizer], list[Any]]:
    """Fit the text encoder, build the module (torch RNG: weight init) and its optimisers."""
    backbone_run = get_backbone(recipe.backbone).start_training(train_texts, recipe, run)
    model_config = make_config(
        recipe.backbone, label_names, backbone_run.args, max_tokens=recipe.max_tokens
    )
    module = backbone_run.build_module(len(label_names)).to(torch.device(run.device))
    classifier = Classifier(module, backbone_run.text_encoder, model_config, run.device)
    # The batch size an epoch really uses (smaller on small data), or a schedule would reach
    # lr 0 long before the last step.
    total_steps = recipe.epochs * math.ceil(
        len(train_texts) / effective_batch_size(len(train_texts), recipe.batch_size)
    )
    optimizers, schedulers = backbone_run.optimizers(module, total_steps)
    return classifier, backbone_run, optimizers, schedulers


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
    data: TrainingData,
    label_names: list[str],
    recipe: TrainRecipe,
    run: RunSettings,
    rng: np.random.Generator,
    on_epoch: OnEpoch | None,
) -> TrainResult:
    classifier, backbone_run, optimizers, schedulers = _build_model(
        data.train_texts, label_names, recipe, run
    )
    # Tokenise once; every epoch only gathers and concatenates id arrays.
    seqs = classifier.text_encoder.tokenize(data.train_texts, recipe.max_tokens)
    dev_seqs = classifier.text_encoder.tokenize(data.dev_texts, recipe.max_tokens)
    stopper = _EarlyStopping(recipe.patience, enabled=data.dev_source != "train")
    epoch = 0
    for epoch in range(1, recipe.epochs + 1):
        _run_epoch(classifier, seqs, data, optimizers, schedulers, recipe, rng, epoch, run)
        f1 = _dev_report(classifier, dev_seqs, data.y_dev, label_names).macro_f1
        log.debug("epoch %d/%d: dev macro-F1 %.4f", epoch, recipe.epochs, f1)
        if on_epoch is not None:
            on_epoch(epoch, recipe.epochs, f1)
        if stopper.update(epoch, f1, classifier.module):
            break
    stopper.restore_best(classifier.module)
    classifier.module.eval()
    backbone_run.finish(classifier)
    return TrainResult(
        classifier=classifier,
        dev_report=_dev_report(classifier, dev_seqs, data.y_dev, label_names),
        manifest=data.manifest(label_names),
        epochs_run=epoch,
        recipe=recipe,
        best_epoch=stopper.best_epoch,
        history=stopper.history,
    )


def _dev_report(
    classifier: Classifier, dev_seqs: list[Any], y_dev: np.ndarray, label_names: list[str]
) -> EvalReport:
    dev_pred = classifier.logits_of_ids(dev_seqs).argmax(dim=1).numpy()
    return report_from_indices(y_dev, dev_pred, label_names)


def _run_epoch(
    classifier: Classifier,
    seqs: list[Any],
    data: TrainingData,
    optimizers: list[torch.optim.Optimizer],
    schedulers: list[Any],
    recipe: TrainRecipe,
    rng: np.random.Generator,
    epoch: int,
    run: RunSettings,
) -> None:
    module, device, collate = classifier.module, classifier.device, classifier.text_encoder.collate
    y, w = data.y_train, data.w_train
    module.train()
    order = rng.permutation(len(seqs))
    batch_size = effective_batch_size(len(order), recipe.batch_size)
    steps = math.ceil(len(order) / batch_size)
    bar = progress(f"epoch {epoch}/{recipe.epochs}", steps, unit="batches", enabled=run.progress)
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
        bar.update(1)
    bar.close()
    module.eval()
