"""Data in and out beyond the CSV files: a JSON-lines export of every labelled message with each
annotator's label, and unlabelled texts read from a file for the labeling queue.

The JSON-lines export is one object per message, every object with the same keys and types, so
`datasets.load_dataset("json", data_files=PATH)` reads it (Arrow infers one schema):

    {"message_id": 12, "text": "...", "label": "positive" | null (a tie), "split": "train",
     "received_at": "2026-12-01T10:00:00+00:00", "chat_type": "private" | null,
     "annotations": [{"annotator": 1001 | null (import), "label": "positive",
                      "source": "inline" | "queue" | "import",
                      "created_at": "...", "updated_at": "..."}]}
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.errors import ImportFileError
from storage.models import Chat, Label, Message
from storage.repositories.dataset import split_of
from storage.repositories.labels import majority


@dataclass(frozen=True, slots=True)
class Annotation:
    annotator: int | None  # Telegram user id; None for `import` labels
    label: str
    source: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class AnnotatedMessage:
    message_id: int
    text: str
    label: str | None  # the majority label; None on a tie
    split: str
    received_at: datetime
    chat_type: str | None
    annotations: list[Annotation] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "text": self.text,
            "label": self.label,
            "split": self.split,
            "received_at": _iso(self.received_at),
            "chat_type": self.chat_type,
            "annotations": [
                {
                    "annotator": a.annotator,
                    "label": a.label,
                    "source": a.source,
                    "created_at": _iso(a.created_at),
                    "updated_at": _iso(a.updated_at),
                }
                for a in self.annotations
            ],
        }


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


async def annotated_messages(session: AsyncSession) -> list[AnnotatedMessage]:
    """Every message with at least one label, with all its labels, ordered by message id."""
    rows = await session.execute(
        select(
            Label.message_id,
            Label.user_id,
            Label.label,
            Label.source,
            Label.created_at,
            Label.updated_at,
            Message.text,
            Message.received_at,
            Chat.type,
        )
        .join(Message, Message.id == Label.message_id)
        .outerjoin(Chat, Chat.id == Message.chat_id)
        .order_by(Label.message_id, Label.id)
    )
    grouped: dict[int, list[Annotation]] = defaultdict(list)
    about: dict[int, tuple[str, datetime, str | None]] = {}
    for mid, uid, label, source, created, updated, text, received, chat_type in rows:
        grouped[mid].append(Annotation(uid, label, source, created, updated))
        about[mid] = (text, received, chat_type)
    return [
        AnnotatedMessage(
            mid,
            about[mid][0],
            majority(a.label for a in annotations),
            split_of(mid),
            about[mid][1],
            about[mid][2],
            annotations,
        )
        for mid, annotations in grouped.items()
    ]


def write_export_jsonl(path: Path, items: list[AnnotatedMessage]) -> None:
    """Write the JSON lines to a temporary file next to `path`, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".export-", suffix=".jsonl", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            for item in items:
                fh.write(json.dumps(item.to_json(), ensure_ascii=False) + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --- unlabelled texts for the queue ------------------------------------------------------------
def read_unlabelled(path: Path | str, text_col: str = "text") -> list[str]:
    """Texts from a `.csv` file (its `text_col` column) or a text file (one text per line),
    stripped, blank ones and repeats left out. `ImportFileError` names the problem."""
    path = Path(path)
    if not path.is_file():
        raise ImportFileError(f"{path}: no such file")
    try:
        if path.suffix.lower() == ".csv":
            texts = _csv_texts(path, text_col)
        else:
            texts = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        raise ImportFileError(f"{path}: not UTF-8 text ({exc.reason}); save it as UTF-8") from None
    except csv.Error as exc:
        raise ImportFileError(f"{path}: not a valid CSV file ({exc})") from None
    texts = list(dict.fromkeys(t.strip() for t in texts if t.strip()))
    if not texts:
        raise ImportFileError(f"{path}: no texts in it")
    return texts


def _csv_texts(path: Path, text_col: str) -> list[str]:
    csv.field_size_limit(2**31 - 1)
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        header = [h.strip() for h in next(reader, None) or []]
        if text_col not in header:
            raise ImportFileError(
                f"{path}: line 1 must be a header with a {text_col!r} column "
                f"(columns: {', '.join(header) or 'none'}); use --text-col"
            )
        index = header.index(text_col)
        return [row[index] for row in reader if len(row) > index]


async def texts_in_chat(session: AsyncSession, chat_id: int) -> set[str]:
    """The texts already stored in a chat (an import adds each text once)."""
    return set(await session.scalars(select(Message.text).where(Message.chat_id == chat_id)))
