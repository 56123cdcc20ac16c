"""`sentibot train`: a model from a labelled CSV file, registered as a candidate.

Heavy imports (torch, the classifier) happen inside the handler so `sentibot --help` stays fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bot import texts
from bot.commands.options import (
    EpochPrinter,
    add_backbone_option,
    check_database,
    positive_int,
    register_written,
    seed_int,
)
from bot.errors import UsageError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a model on a labelled CSV file (registered as a candidate)",
        description="Train a model folder (default: the next version in MODEL_DIR) and register "
        "it as a candidate; `sentibot models activate VERSION` serves it.",
    )
    p.add_argument("--data", required=True, type=Path, help="CSV file with a header row")
    p.add_argument("--text-col", default="text", help="column holding the text (default: text)")
    p.add_argument("--label-col", default="label", help="column holding the label (default: label)")
    p.add_argument("--labels", help="comma-separated label list, in order (default: from the data)")
    p.add_argument("--out", type=Path, help="new model folder (default: next version in MODEL_DIR)")
    p.add_argument("--epochs", type=positive_int, help="maximum epochs (default: 5)")
    p.add_argument("--seed", type=seed_int, default=0, help="random seed (default: 0)")
    add_backbone_option(p, "the BACKBONE setting")
    p.set_defaults(handler=train_command)


def train_command(args: argparse.Namespace, settings) -> int:
    from classifier.artifacts import next_version_dir, save_model
    from classifier.data import infer_labels, parse_label_list, read_labelled_csv
    from classifier.device import resolve_device
    from classifier.errors import DataError
    from classifier.recipe import RunSettings, TrainRecipe
    from classifier.training import train

    labels = parse_label_list(args.labels) if args.labels is not None else None
    texts_, gold = read_labelled_csv(args.data, args.text_col, args.label_col, labels)
    if labels is not None and len(set(gold)) < 2:  # infer_labels checks the other case
        raise DataError(
            f"{args.data}: need at least 2 different labels to train, found only {gold[0]!r}"
        )
    labels = labels or infer_labels(gold, str(args.data))
    out = args.out or next_version_dir(settings.models_path)
    if out.exists():
        raise UsageError(f"--out {out}: already exists (model folders are never overwritten)")
    check_database(settings)  # registering comes after training: fail now, not then
    recipe = TrainRecipe(
        backbone=args.backbone or settings.backbone,
        seed=args.seed,
        max_tokens=settings.max_tokens,
        bert_path=str(settings.bert_path) if settings.bert_path else None,
        bert_mode=settings.bert_mode,
    )
    if args.epochs is not None:
        recipe.epochs = args.epochs
    run = RunSettings(
        device=resolve_device(settings.device), feature_cache=str(settings.feature_cache_path)
    )
    print(f"training on {len(texts_)} rows from {args.data} (labels: {', '.join(labels)})")

    result = train(texts_, gold, labels, recipe, run=run, on_epoch=EpochPrinter())
    card = result.card("train", origin={"data": str(args.data), "command": "train"})
    print(texts.epochs_summary(card))
    where = texts.WHERE_DEV[result.manifest["dev_source"]]
    print(f"dev metrics ({where}, best epoch {result.best_epoch}):")
    print(result.dev_report.format_table())
    path = save_model(result.classifier, out, card)
    print(texts.MODEL_WRITTEN.format(path=path))
    register_written(settings, path)
    return 0
