"""`sentibot export` (labelled messages as CSV or JSON lines) and `sentibot import` (a labelled
CSV as `import` labels, or `--unlabelled` texts into the labeling queue).

SQLAlchemy and the classifier are imported inside the handlers so `sentibot --help` stays fast.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from bot import texts
from bot.commands.options import database
from bot.config import DEFAULT_LABELS
from bot.errors import UsageError

IMPORT_CHUNK = 500  # texts scored and stored per unit of work


def register(subparsers: argparse._SubParsersAction) -> None:
    export = subparsers.add_parser(
        "export",
        help="write the labelled messages to a CSV or JSON-lines file",
        description="csv: every message with a resolved label, text,label plus provenance "
        "columns (message_id, split, sources, n_labels, agreement, last_labelled_at). jsonl: "
        "every labelled message with each annotator's label, source and time (one object per "
        'line; `datasets.load_dataset("json", data_files=FILE)` reads it).',
    )
    export.add_argument("--out", required=True, type=Path, help="file to write")
    export.add_argument("--format", choices=("csv", "jsonl"), default="csv", help="default: csv")
    export.set_defaults(handler=export_command)

    imp = subparsers.add_parser(
        "import",
        help="import labels from a text,label CSV, or --unlabelled texts for the queue",
        description="Import a CSV file with a header row holding `text` and `label` columns "
        "(bad rows are reported by line number and nothing is imported); or with --unlabelled, "
        "texts (a CSV's text column, else one per line) for the /label queue, scored by the "
        "active model.",
    )
    imp.add_argument("file", type=Path, help="CSV file (text,label), or texts with --unlabelled")
    imp.add_argument(
        "--labels",
        default=",".join(DEFAULT_LABELS),
        help=f"allowed labels, comma-separated (default: {','.join(DEFAULT_LABELS)})",
    )
    imp.add_argument(
        "--unlabelled", action="store_true", help="texts without labels, for the labeling queue"
    )
    imp.add_argument("--text-col", default="text", help="a CSV's text column (default: text)")
    imp.set_defaults(handler=import_command)


def _check_out(out: Path) -> None:
    if out.is_dir():
        raise UsageError(f"--out {out} is a folder; give a file name such as labels.csv")


def export_command(args: argparse.Namespace, settings) -> int:
    _check_out(args.out)
    count = asyncio.run(_export(settings, args.out, args.format))
    what = "labelled messages" if args.format == "csv" else "messages with labels"
    print(texts.EXPORTED.format(count=count, what=what, path=args.out))
    return 0


async def _export(settings, out: Path, fmt: str) -> int:
    """CSV: the resolved labels (weighed by each labeller's reliability, as the bot exports
    them); JSON lines: every message with every annotator's own label."""
    from bot.learning.resolution import LabelResolver
    from bot.learning.served import ServedModel
    from storage import repositories as repo

    async with database(settings.db_url, model_dir=settings.models_path) as sessionmaker:
        if fmt == "csv":
            served = ServedModel(sessionmaker, None, models_path=settings.models_path)
            resolver = LabelResolver(sessionmaker, served, settings.annotators)
            examples = (await resolver.resolve()).examples
            await asyncio.to_thread(repo.write_export_csv, out, examples)
            return len(examples)
        async with sessionmaker() as session:
            items = await repo.annotated_messages(session)
    await asyncio.to_thread(repo.write_export_jsonl, out, items)
    return len(items)


def import_command(args: argparse.Namespace, settings) -> int:
    from storage import repositories as repo

    if args.unlabelled:
        return import_unlabelled(args, settings)
    labels = [label.strip() for label in args.labels.split(",") if label.strip()]
    if not labels:
        raise UsageError("--labels needs at least one label")
    rows = repo.read_import_csv(args.file, labels)  # validates everything before any write
    result = asyncio.run(_import(settings, rows))
    print(
        f"imported {result.rows} rows from {args.file}: {result.created} new messages, "
        f"{result.changed} changed labels, {result.unchanged} already there"
    )
    return 0


async def _import(settings, rows: list[tuple[str, str]]):
    from storage import repositories as repo

    async with database(settings.db_url, model_dir=settings.models_path) as sessionmaker:
        async with sessionmaker.begin() as session:
            return await repo.import_labels(session, rows)


def import_unlabelled(args: argparse.Namespace, settings) -> int:
    """Texts into the queue: stored as messages of the import chat, each scored by the model
    the bot serves (the queue orders by its predictions' margins)."""
    from bot.commands.predict import choose_model
    from classifier.artifacts import load_model
    from classifier.device import resolve_device
    from storage import repositories as repo

    found = repo.read_unlabelled(args.file, args.text_col)
    choice = choose_model(None, settings)
    classifier = load_model(choice.folder, device=resolve_device(settings.device))
    new, skipped = asyncio.run(_queue(settings, found, classifier, choice.version))
    print(
        texts.IMPORTED_UNLABELLED.format(
            new=new, skipped=skipped, path=args.file, version=choice.version
        )
    )
    return 0


async def _queue(settings, found: list[str], classifier, version: str) -> tuple[int, int]:
    from classifier.progress import progress
    from storage import repositories as repo
    from storage.models import IMPORT_CHAT_ID

    async with database(settings.db_url, model_dir=settings.models_path) as sessionmaker:
        async with sessionmaker() as session:
            known = await repo.texts_in_chat(session, IMPORT_CHAT_ID)
        fresh = [text for text in found if text not in known]
        with progress("scoring the imported texts", len(fresh), unit="texts") as bar:
            for start in range(0, len(fresh), IMPORT_CHUNK):
                chunk = fresh[start : start + IMPORT_CHUNK]
                probs = await asyncio.to_thread(classifier.predict_proba, chunk)
                items = [
                    _scored(text, row, classifier.labels, version)
                    for text, row in zip(chunk, probs, strict=True)
                ]
                async with sessionmaker.begin() as session:
                    await repo.record_scored_messages(session, items)
                bar.update(len(chunk))
    return len(fresh), len(found) - len(fresh)


def _scored(text: str, row, labels: list[str], version: str):
    from storage import repositories as repo
    from storage.models import IMPORT_CHAT_ID

    best = int(row.argmax())
    return repo.ScoredMessage(
        chat_id=IMPORT_CHAT_ID,
        chat_type="import",
        chat_title=texts.IMPORT_CHAT_TITLE,
        user_id=None,
        text=text,
        model_version=version,
        label=labels[best],
        confidence=float(row[best]),
        probs={name: float(p) for name, p in zip(labels, row, strict=True)},
    )
