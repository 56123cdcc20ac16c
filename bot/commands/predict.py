"""`sentibot eval | predict`: a model from the command line, by default the active one.

Both say which version answered. `predict -` / `--file PATH` read one text per line and write
JSON lines, scoring in batches of PREDICT_MAX_BATCH (the bot's Predictor batches the same way).
Heavy imports (torch, the classifier, SQLAlchemy) happen inside the handlers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from bot import texts
from bot.commands.options import database, write_plot
from bot.errors import OperatorError, UsageError

_VERSION = re.compile(r"^v\d+$")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("eval", help="evaluate a model on a labelled CSV file")
    p.add_argument("--data", required=True, type=Path, help="CSV file with a header row")
    p.add_argument("--text-col", default="text", help="column holding the text (default: text)")
    p.add_argument("--label-col", default="label", help="column holding the label (default: label)")
    p.add_argument("--model", help="model folder or version (default: the active version)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--plot", type=Path, metavar="FILE.png", help="also draw the confusion matrix")
    p.set_defaults(handler=eval_command)

    p = subparsers.add_parser(
        "predict",
        help="score texts with a model (arguments, stdin or a file)",
        description="Score TEXT arguments (one line each, `label NN%%`, or JSON with --json), "
        "or one text per line from stdin (`-`) or --file PATH as JSON lines.",
    )
    p.add_argument("texts", nargs="*", metavar="TEXT", help="texts to score; `-` reads stdin")
    p.add_argument("--file", type=Path, help="read one text per line from this file")
    p.add_argument("--model", help="model folder or version (default: the active version)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(handler=predict_command)


@dataclass(frozen=True)
class ModelChoice:
    folder: Path
    version: str
    how: str  # why this one (texts.HOW_*)


def choose_model(model: str | None, settings) -> ModelChoice:
    """`--model` (a folder, or a version name), else the active version, else the newest folder
    (what the first start would activate); OperatorError when there is none."""
    from classifier.artifacts import list_model_dirs

    if model is not None:
        path = Path(model)
        if path.is_dir():
            return ModelChoice(path, path.name, texts.HOW_OPTION)
        if path.exists():
            raise UsageError(f"--model {model}: not a folder (give the model's folder)")
        if not _VERSION.match(model):
            raise UsageError(f"--model {model}: no such folder")
        return ModelChoice(_version_folder(settings, model), model, texts.HOW_OPTION)
    active = _active(settings)
    if active is not None:
        return ModelChoice(active[1], active[0], texts.HOW_ACTIVE)
    folders = list_model_dirs(settings.models_path)
    if not folders:
        raise OperatorError(texts.NO_MODEL.format(path=settings.models_path))
    return ModelChoice(folders[-1], folders[-1].name, texts.HOW_NEWEST)


def _version_folder(settings, version: str) -> Path:
    from bot.learning.folders import folder_path
    from storage import repositories as repo

    async def lookup() -> str | None:
        async with database(settings.db_url, model_dir=settings.models_path) as sessionmaker:
            async with sessionmaker() as session:
                row = await repo.get_model_version(session, version)
                return None if row is None else row.folder

    stored = asyncio.run(lookup()) if _database_exists(settings) else None
    folder = folder_path(settings.models_path, stored or version)
    if not folder.is_dir():
        raise UsageError(f"--model {version}: {texts.REGISTRY_UNKNOWN.format(version=version)}")
    return folder


def _active(settings) -> tuple[str, Path] | None:
    """The database's active version and its folder (None: none, or no database yet)."""
    from bot.learning.folders import folder_path
    from storage import repositories as repo

    if not _database_exists(settings):
        return None

    async def read() -> tuple[str, str] | None:
        async with database(settings.db_url, model_dir=settings.models_path) as sessionmaker:
            async with sessionmaker() as session:
                row = await repo.get_active_model_version(session)
                return None if row is None else (row.version, row.folder)

    found = asyncio.run(read())
    return None if found is None else (found[0], folder_path(settings.models_path, found[1]))


def _database_exists(settings) -> bool:
    """False for a SQLite file that is not there yet (reading must not create it)."""
    from sqlalchemy import make_url

    url = make_url(settings.db_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return True
    return Path(url.database).exists()


def _load(choice: ModelChoice, settings):
    from classifier.artifacts import load_model
    from classifier.device import resolve_device

    return load_model(choice.folder, device=resolve_device(settings.device))


def eval_command(args: argparse.Namespace, settings) -> int:
    from classifier.data import read_labelled_csv
    from classifier.metrics import evaluate

    choice = choose_model(args.model, settings)
    classifier = _load(choice, settings)
    texts_, gold = read_labelled_csv(
        args.data, args.text_col, args.label_col, classifier.labels, allow_blank_text=True
    )
    report = evaluate(classifier, texts_, gold)
    if args.json:
        print(json.dumps({**report.to_dict(), "model": choice.version}, ensure_ascii=False))
    else:
        print(texts.EVAL_ON.format(version=choice.version, how=choice.how, data=args.data))
        print(report.format_table())
    if args.plot is not None:
        from bot import charts

        title = texts.EVAL_PLOT_TITLE.format(version=choice.version, data=args.data.name)
        write_plot(args.plot, charts.confusion_png(report.to_dict(), title))
    return 0


def predict_command(args: argparse.Namespace, settings) -> int:
    stream = args.texts == ["-"]
    if (args.file is not None) + stream + bool(args.texts and not stream) > 1:
        raise UsageError(texts.PREDICT_BOTH_INPUTS)
    if args.file is None and not args.texts:
        raise UsageError(texts.PREDICT_NO_INPUT)
    if args.file is not None and not args.file.is_file():
        raise UsageError(f"--file {args.file}: no such file")
    choice = choose_model(args.model, settings)
    classifier = _load(choice, settings)
    print(texts.ANSWERED_BY.format(version=choice.version, how=choice.how), file=sys.stderr)
    if args.file is None and not stream:
        _print(classifier, choice.version, list(args.texts), as_json=args.json)
        return 0
    if args.file is not None:
        with args.file.open("rb") as source:
            bad = _stream(classifier, choice.version, source, settings.predict_max_batch)
    else:
        bad = _stream(classifier, choice.version, sys.stdin.buffer, settings.predict_max_batch)
    if bad:
        print(texts.REPLACED_BYTES.format(lines=bad), file=sys.stderr)
    return 0


def _stream(classifier, version: str, source: BinaryIO, batch: int) -> int:
    """Score `source` line by line in batches, JSON lines out; returns how many lines had bytes
    that are not UTF-8 (read as U+FFFD)."""
    bad = 0
    for chunk in _chunks(source, batch):
        lines = []
        for raw in chunk:
            try:
                lines.append(raw.decode("utf-8"))
            except UnicodeDecodeError:
                lines.append(raw.decode("utf-8", errors="replace"))
                bad += 1
        _print(classifier, version, lines, as_json=True)
    return bad


def _chunks(source: BinaryIO, size: int) -> Iterator[list[bytes]]:
    chunk: list[bytes] = []
    for raw in source:
        chunk.append(raw.rstrip(b"\r\n"))
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _print(classifier, version: str, texts_: list[str], *, as_json: bool) -> None:
    probs = classifier.predict_proba(texts_)
    out = []
    for text, row in zip(texts_, probs, strict=True):
        best = int(row.argmax())
        label, confidence = classifier.labels[best], float(row[best])
        if as_json:
            record = {
                "text": text,
                "label": label,
                "confidence": confidence,
                "probs": {name: float(p) for name, p in zip(classifier.labels, row, strict=True)},
                "model": version,
            }
            out.append(json.dumps(record, ensure_ascii=False))
        else:
            out.append(f"{label} {confidence:.0%}")
    sys.stdout.write("\n".join(out) + "\n")
    sys.stdout.flush()
