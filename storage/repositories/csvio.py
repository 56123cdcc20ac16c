"""CSV export of labelled messages and CSV import of `text,label` rows as `import` labels.

Exported texts are chat messages anyone could have written, and admins open the export in
spreadsheets. A cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return is run as a
formula there (CSV injection), so the export prefixes such texts, and texts that already start
with `'`, with a `'` (the OWASP advice: spreadsheets show the cell as plain text). `sentibot
import` recognises an export file by its header and removes that one `'` again, so export →
import round-trips exactly; other CSV files are imported as written.
"""

from __future__ import annotations

import asyncio
import csv
import os
import tempfile
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.errors import ImportFileError
from storage.models import Label, Message, utcnow
from storage.repositories.dataset import LabelledExample, labelled_examples
from storage.repositories.labels import set_label

EXPORT_COLUMNS = (
    "text",
    "label",
    "message_id",
    "split",
    "sources",
    "n_labels",
    "agreement",
    "last_labelled_at",
)
MAX_REPORTED_ERRORS = 10
# Cells a spreadsheet would evaluate; `'` itself is escaped too, so unescaping is unambiguous.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "'")
# Columns only an export file has: their presence means its texts carry the `'` guard.
_EXPORT_MARKERS = {"message_id", "sources", "last_labelled_at"}


def spreadsheet_safe(text: str) -> str:
    """`text` as an export cell: prefixed with `'` when a spreadsheet would run it as a formula."""
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def from_spreadsheet_safe(cell: str) -> str:
    """Undo `spreadsheet_safe` (for cells read from an export file)."""
    return cell[1:] if cell.startswith("'") and cell[1:].startswith(_FORMULA_STARTS) else cell


def write_export_csv(path: Path, examples: list[LabelledExample]) -> None:
    """Write the CSV to a temporary file next to `path`, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".export-", suffix=".csv", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(EXPORT_COLUMNS)
            for ex in examples:
                writer.writerow(
                    [
                        spreadsheet_safe(ex.text),
                        ex.label,
                        ex.message_id,
                        ex.split,
                        ";".join(ex.sources),
                        ex.n_labels,
                        f"{ex.agreement:.3f}",
                        ex.last_labelled_at.isoformat(timespec="seconds"),
                    ]
                )
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


async def export_labels_csv(session: AsyncSession, path: Path | str) -> int:
    """Write every message with a resolved label to `path` (atomically); returns the row count.

    Columns: EXPORT_COLUMNS (`sources` is `;`-joined, e.g. `inline;queue`). Ties are left out.
    """
    examples = await labelled_examples(session)
    await asyncio.to_thread(write_export_csv, Path(path), examples)
    return len(examples)


def read_import_csv(path: Path | str, allowed_labels: Sequence[str]) -> list[tuple[str, str]]:
    """Read and validate a `text,label` CSV (extra columns ignored) into (text, label) rows.

    Labels are matched case-insensitively against `allowed_labels`. Every problem is collected
    and raised as one `ImportFileError` naming the line numbers, before anything is written.
    """
    path = Path(path)
    if not path.is_file():
        raise ImportFileError(f"{path}: no such file")
    allowed = {label.lower(): label for label in allowed_labels}
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            return _parse_rows(path, csv.reader(fh), allowed)
    except UnicodeDecodeError as exc:
        raise ImportFileError(f"{path}: not UTF-8 text ({exc.reason})") from None
    except csv.Error as exc:
        raise ImportFileError(f"{path}: not a valid CSV file ({exc})") from None


def _parse_rows(path: Path, reader, allowed: dict[str, str]) -> list[tuple[str, str]]:
    header = next(reader, None)
    names = [h.strip().lower() for h in header or []]
    if "text" not in names or "label" not in names:
        raise ImportFileError(f"{path}: line 1 must be a header with columns text,label")
    ti, li = names.index("text"), names.index("label")
    unescape = from_spreadsheet_safe if _EXPORT_MARKERS <= set(names) else (lambda cell: cell)
    rows: list[tuple[str, str]] = []
    errors: list[str] = []
    seen: dict[str, tuple[int, str]] = {}
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue  # blank lines are harmless
        if len(row) <= max(ti, li):
            errors.append(f"line {line}: expected columns text,label")
            continue
        text, raw = unescape(row[ti]).strip(), row[li].strip()
        label = allowed.get(raw.lower())
        if not text:
            errors.append(f"line {line}: empty text")
        elif label is None:
            errors.append(
                f"line {line}: unknown label {raw!r} (allowed: {', '.join(allowed.values())})"
            )
        elif text in seen and seen[text][1] != label:
            errors.append(f"line {line}: same text as line {seen[text][0]} with another label")
        elif text not in seen:
            seen[text] = (line, label)
            rows.append((text, label))
    if errors:
        more = len(errors) - MAX_REPORTED_ERRORS
        shown = "; ".join(errors[:MAX_REPORTED_ERRORS]) + (f"; and {more} more" if more > 0 else "")
        raise ImportFileError(f"{path}: {len(errors)} bad row(s), nothing imported: {shown}")
    if not rows:
        raise ImportFileError(f"{path}: no rows to import")
    return rows


@dataclass(frozen=True, slots=True)
class ImportResult:
    rows: int  # distinct (text, label) rows in the file
    created: int  # new messages
    changed: int  # previously imported texts whose import label changed
    unchanged: int


async def import_labels(session: AsyncSession, rows: Collection[tuple[str, str]]) -> ImportResult:
    """Store each (text, label) as a message without chat/user plus an `import` label.

    Importing the same text again reuses its message (so re-importing a file is harmless and a
    corrected file replaces the old import labels). Runs in the caller's unit of work: if it
    fails half-way, the caller's rollback leaves nothing behind.
    """
    existing = dict(
        (text, mid)
        for mid, text in await session.execute(
            select(Message.id, Message.text).where(Message.chat_id.is_(None))
        )
    )
    created = changed = 0
    now = utcnow()
    new_messages = [Message(text=t, received_at=now) for t, _ in rows if t not in existing]
    session.add_all(new_messages)
    await session.flush()
    for msg in new_messages:
        existing[msg.text] = msg.id
    created = len(new_messages)
    fresh = {m.id for m in new_messages}
    for text, label in rows:
        mid = existing[text]
        if mid in fresh:
            session.add(
                Label(
                    message_id=mid,
                    user_id=None,
                    label=label,
                    source="import",
                    created_at=now,
                    updated_at=now,
                )
            )
            continue
        change = await set_label(session, mid, None, label, source="import")
        changed += change.action != "unchanged"
    await session.flush()
    return ImportResult(len(rows), created, changed, len(rows) - created - changed)


async def import_labels_csv(
    session: AsyncSession, path: Path | str, allowed_labels: Sequence[str]
) -> ImportResult:
    """`read_import_csv` then `import_labels` (nothing is written when the file has bad rows)."""
    rows = await asyncio.to_thread(read_import_csv, path, allowed_labels)
    return await import_labels(session, rows)
