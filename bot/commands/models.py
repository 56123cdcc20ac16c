"""`sentibot models list | show | activate | delete | rollback`: the model registry.

`list` shows every version (registered rows and unregistered folders of MODEL_DIR) with its
status, backbone, rows and macro-F1 with the rows it was measured on; `show` prints the model
card; `activate` registers a folder if needed, checks it like a rollback and writes the audit
log (a running bot follows within its sync interval); `delete` removes a version that is not
active; `rollback` is /rollback. Heavy imports happen inside the handlers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from bot import texts
from bot.commands.options import learning_service, write_plot
from bot.errors import UsageError


def register(subparsers: argparse._SubParsersAction) -> None:
    models = subparsers.add_parser(
        "models",
        help="model versions: list, show, activate, delete, rollback",
        description="The model registry (default action: list).",
    )
    sub = models.add_subparsers(dest="models_command", metavar="ACTION")
    models.set_defaults(handler=list_command, json=False, plot=None)

    p = sub.add_parser("list", help="every version with its status and figures")
    p.add_argument("--json", action="store_true", help="one JSON array")
    p.add_argument("--plot", type=Path, metavar="FILE.png", help="chart of macro-F1 by version")
    p.set_defaults(handler=list_command)

    p = sub.add_parser("show", help="print a version's model card")
    p.add_argument("version", help="version name (v0003) or model folder")
    p.add_argument("--json", action="store_true", help="the card as JSON (metrics.json)")
    p.add_argument("--plot", type=Path, metavar="FILE.png", help="chart of the dev curve")
    p.set_defaults(handler=show_command)

    p = sub.add_parser(
        "activate",
        help="serve a version (registers a folder first if needed)",
        description="Check that the version loads and scores the eval split, make it active "
        "and write the audit log; a running bot swaps it in within its sync interval.",
    )
    p.add_argument("version", help="version name (v0003) or a model folder's path")
    p.add_argument("--force", action="store_true", help="also a version the gate rejected")
    p.set_defaults(handler=activate_command)

    p = sub.add_parser(
        "delete",
        help="delete a version that is not active (folder and registry row)",
        description="Delete a version's folder (inside MODEL_DIR) and registry row; the active "
        "version is refused. A deleted version is gone for /rollback too.",
    )
    p.add_argument("version", help="version name (v0003)")
    p.set_defaults(handler=delete_command)

    p = sub.add_parser("rollback", help="go back to the previously active version (/rollback)")
    p.add_argument("version", nargs="?", help="a named version instead of the previous one")
    p.set_defaults(handler=rollback_command)


def _run(settings, work):
    """Run `work(learning)` on the CLI's learning service; refusals become usage errors."""
    from bot.learning.errors import LearningError

    async def go():
        async with learning_service(settings) as learning:
            return await work(learning)

    try:
        return asyncio.run(go())
    except LearningError as exc:
        raise UsageError(str(exc)) from None


def list_command(args: argparse.Namespace, settings) -> int:
    entries = _run(settings, lambda learning: learning.registry.entries())
    if args.json:
        print(json.dumps([_entry_dict(e) for e in entries], ensure_ascii=False, default=str))
    elif not entries:
        print(texts.NO_VERSIONS)
    else:
        print("\n".join(texts.models_table(entries)))
    if args.plot is not None:
        from bot import charts

        points = charts.version_points(list(reversed(entries)))
        if not points:
            raise UsageError(texts.NOTHING_TO_PLOT.format(what="no version has figures"))
        write_plot(args.plot, charts.versions_png(points, texts.MODELS_CHART_TITLE))
    return 0


def _entry_dict(entry) -> dict:
    evalset = entry.eval_set
    return {
        "version": entry.version,
        "status": entry.status,
        "folder": str(entry.folder),
        "backbone": entry.backbone,
        "rows": entry.train_rows,
        "macro_f1": entry.macro_f1,
        "measured_on": None if evalset is None else evalset.name,
        "n": None if evalset is None else evalset.n,
        "user_rows": None if evalset is None else evalset.user_rows,
        "reliable": None if evalset is None else evalset.reliable,
        "created_at": entry.created_at,
        "reason": entry.reason,
        "problem": entry.problem,
    }


def _folder_of(settings, name: str) -> tuple[str, str, Path]:
    """(version, status, folder) of a version name or a model folder's path."""
    path = Path(name)
    if path.is_dir() and not (settings.models_path / name).is_dir():
        return path.name, "folder", path
    entry = _run(settings, lambda learning: learning.registry.entry(name))
    return entry.version, entry.status, entry.folder


def show_command(args: argparse.Namespace, settings) -> int:
    from classifier.artifacts import read_config
    from classifier.card import read_card
    from classifier.card_text import render_readme

    version, status, folder = _folder_of(settings, args.version)
    card = read_card(folder)
    if args.json:
        print(json.dumps(card.to_dict(), indent=2, ensure_ascii=False))
    else:
        labels = list(read_config(folder)["labels"])
        print(f"{version}: {status}, {folder}\n")
        print(render_readme(card, version=version, labels=labels), end="")
    if args.plot is not None:
        from bot import charts

        if not card.training.dev_curve:
            raise UsageError(texts.NOTHING_TO_PLOT.format(what=f"{version} has no dev curve"))
        title = texts.DEV_CURVE_TITLE.format(version=version)
        png = charts.dev_curve_png(card.training.dev_curve, card.training.best_epoch, title)
        write_plot(args.plot, png)
    return 0


def activate_command(args: argparse.Namespace, settings) -> int:
    from bot.learning.errors import RejectedVersionError

    async def activate(learning):
        try:
            return await learning.registry.activate(None, args.version, force=args.force)
        except RejectedVersionError as exc:
            raise UsageError(f"{exc}{texts.FORCE_HINT.format(version=args.version)}") from None

    print(texts.activated(_run(settings, activate)))
    return 0


def delete_command(args: argparse.Namespace, settings) -> int:
    done = _run(settings, lambda learning: learning.registry.delete(None, args.version))
    print("\n".join(texts.deleted(done)))
    return 0


def rollback_command(args: argparse.Namespace, settings) -> int:
    done = _run(settings, lambda learning: learning.versions.rollback(None, args.version))
    print(texts.rolled_back(done))
    return 0
