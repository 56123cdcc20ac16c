"""`sentibot train | eval | predict`: the classifier from the command line.

Heavy imports (torch, the classifier) happen inside the handlers so `sentibot --help` stays fast.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bot.commands.options import add_backbone_option, positive_int, print_epoch, seed_int
from bot.errors import OperatorError, UsageError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train", help="train a model on a labelled CSV file")
    p.add_argument("--data", required=True, type=Path, help="CSV file with a header row")
    p.add_argument("--text-col", default="text", help="column holding the text (default: text)")
    p.add_argument("--label-col", default="label", help="column holding the label (default: label)")
    p.add_argument("--labels", help="comma-separated label list, in order (default: from the data)")
    p.add_argument("--out", type=Path, help="new model folder (default: next version in MODEL_DIR)")
    p.add_argument("--epochs", type=positive_int, help="maximum epochs (default: 5)")
    p.add_argument("--seed", type=seed_int, default=0, help="random seed (default: 0)")
    add_backbone_option(p, "the BACKBONE setting")
    p.set_defaults(handler=train_command)

    p = subparsers.add_parser("eval", help="evaluate a model on a labelled CSV file")
    p.add_argument("--data", required=True, type=Path, help="CSV file with a header row")
    p.add_argument("--text-col", default="text", help="column holding the text (default: text)")
    p.add_argument("--label-col", default="label", help="column holding the label (default: label)")
    p.add_argument("--model", type=Path, help="model folder (default: newest in MODEL_DIR)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=eval_command)

    p = subparsers.add_parser("predict", help="score texts with a model")
    p.add_argument("texts", nargs="+", metavar="TEXT", help="texts to score")
    p.add_argument("--model", type=Path, help="model folder (default: newest in MODEL_DIR)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(handler=predict_command)


def resolve_model_dir(model: Path | None, settings) -> Path:
    """`--model`, or the newest version folder under MODEL_DIR (clear error when there is none)."""
    from classifier.artifacts import list_model_dirs

    if model is not None:
        if not model.exists():
            raise UsageError(f"--model {model}: no such folder")
        if not model.is_dir():
            raise UsageError(f"--model {model}: not a folder (give the model's folder)")
        return model
    versions = list_model_dirs(settings.models_path)
    if not versions:
        raise OperatorError(
            f"no model in MODEL_DIR={settings.models_path}; run `sentibot bootstrap` or "
            "`sentibot train --data FILE.csv` first, or pass --model DIR"
        )
    return versions[-1]


def _load(model_dir: Path, settings):
    from classifier.artifacts import load_model
    from classifier.device import resolve_device

    return load_model(model_dir, device=resolve_device(settings.device))


def train_command(args: argparse.Namespace, settings) -> int:
    from classifier.artifacts import next_version_dir, save_model
    from classifier.data import infer_labels, parse_label_list, read_labelled_csv
    from classifier.device import resolve_device
    from classifier.errors import DataError
    from classifier.recipe import RunSettings, TrainRecipe
    from classifier.training import train

    labels = parse_label_list(args.labels) if args.labels is not None else None
    texts, gold = read_labelled_csv(args.data, args.text_col, args.label_col, labels)
    if labels is not None and len(set(gold)) < 2:  # infer_labels checks the other case
        raise DataError(
            f"{args.data}: need at least 2 different labels to train, found only {gold[0]!r}"
        )
    labels = labels or infer_labels(gold, str(args.data))
    out = args.out or next_version_dir(settings.models_path)
    if out.exists():
        raise UsageError(f"--out {out}: already exists (model folders are never overwritten)")
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
    print(f"training on {len(texts)} rows from {args.data} (labels: {', '.join(labels)})")

    result = train(texts, gold, labels, recipe, run=run, on_epoch=print_epoch)
    where = {
        "split": "dev split",
        "explicit": "dev set",
        "train": "training data (too few rows for a dev split)",
    }
    print(f"dev metrics ({where[result.manifest['dev_source']]}, best epoch {result.best_epoch}):")
    print(result.dev_report.format_table())
    card = result.card("train", origin={"data": str(args.data), "command": "train"})
    path = save_model(result.classifier, out, card)
    print(f"model written to {path}")
    return 0


def eval_command(args: argparse.Namespace, settings) -> int:
    from classifier.data import read_labelled_csv
    from classifier.metrics import evaluate

    model_dir = resolve_model_dir(args.model, settings)
    classifier = _load(model_dir, settings)
    texts, gold = read_labelled_csv(
        args.data, args.text_col, args.label_col, classifier.labels, allow_blank_text=True
    )
    report = evaluate(classifier, texts, gold)
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        print(f"model {model_dir} on {args.data}:")
        print(report.format_table())
    return 0


def predict_command(args: argparse.Namespace, settings) -> int:
    model_dir = resolve_model_dir(args.model, settings)
    classifier = _load(model_dir, settings)
    probs = classifier.predict_proba(args.texts)
    for text, row in zip(args.texts, probs, strict=True):
        best = int(row.argmax())
        label, confidence = classifier.labels[best], float(row[best])
        if args.json:
            record = {
                "text": text,
                "label": label,
                "confidence": confidence,
                "probs": {name: float(p) for name, p in zip(classifier.labels, row, strict=True)},
                "model": model_dir.name,
            }
            print(json.dumps(record, ensure_ascii=False))
        else:
            print(f"{label} {confidence:.0%}")
    return 0
