"""Reading labelled CSV files, with one clear `DataError` naming the file, line or column."""

from __future__ import annotations

import csv
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from classifier.errors import DataError
from classifier.progress import progress

DEFAULT_LABELS = ("negative", "neutral", "positive")
# Label names travel inside Telegram callback data (`fb:<message_id>:<label>`, 64 bytes at most),
# CSV cells and reports, so they are plain words: letters, digits, `_` and `-`, at most 32
# characters. The bot parses its buttons with this same pattern.
LABEL_NAME = r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}"
_LABEL_NAME_RE = re.compile(rf"^{LABEL_NAME}$")


def check_label_names(labels: Sequence[str], where: str) -> None:
    """DataError naming the first label that is not a plain word (see LABEL_NAME)."""
    for label in labels:
        if not _LABEL_NAME_RE.match(label):
            raise DataError(
                f"{where}: label {label!r} is not a plain word (letters, digits, _ or -, "
                "at most 32 characters)"
            )


def parse_label_list(value: str | Sequence[str], option: str = "--labels") -> list[str]:
    """`"a,b,c"` → `["a", "b", "c"]`; DataError unless ≥ 2 distinct, non-empty names."""
    parts = value.split(",") if isinstance(value, str) else list(value)
    labels = [p.strip() for p in parts]
    if any(not p for p in labels):
        raise DataError(f"{option}: empty label name in {value!r}")
    if len(set(labels)) != len(labels):
        raise DataError(f"{option}: duplicate label names in {value!r}")
    if len(labels) < 2:
        raise DataError(f"{option}: need at least 2 labels, got {len(labels)} ({value!r})")
    check_label_names(labels, option)
    return labels


def infer_labels(labels: Sequence[str], source: str = "data") -> list[str]:
    """Label list for data without `--labels`: the default order when it fits, else sorted."""
    present = set(labels)
    if len(present) < 2:
        found = ", ".join(repr(x) for x in sorted(present)) or "none"
        raise DataError(
            f"{source}: need at least 2 different labels to train, found {found} "
            "(pass --labels to name them)"
        )
    if present <= set(DEFAULT_LABELS):
        return [x for x in DEFAULT_LABELS if x in present]
    check_label_names(sorted(present), source)
    return sorted(present)


def read_labelled_csv(
    path: str | Path,
    text_col: str = "text",
    label_col: str = "label",
    labels: Sequence[str] | None = None,
    *,
    allow_blank_text: bool = False,
) -> tuple[list[str], list[str]]:
    """Read `(texts, labels)` from a UTF-8 CSV with a header row.

    DataError (one line, naming the file and line/column) on: a missing or unreadable file, a
    missing column, no data rows, a blank text (unless `allow_blank_text`), an empty label, or a
    label outside `labels` when `labels` is given.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if not path.is_file():
        raise DataError(f"{path}: not a file")
    allowed = set(labels) if labels is not None else None
    texts: list[str] = []
    gold: list[str] = []
    # Tweets can be long; the csv module's default 128 KiB field limit is too small for a
    # 100,000-character text with multi-byte characters.
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    try:
        lines = _count_lines(path)
        bar = progress(f"reading {path.name}", lines, unit="lines")
        with bar, path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                raise DataError(
                    f"{path}: empty file (expected a header row with {text_col!r}, {label_col!r})"
                )
            header = [h.strip() for h in header]
            cols = _column_indices(path, header, text_col, label_col)
            for row in reader:
                line = reader.line_num
                bar.update(line - bar.done)
                if not row or all(not cell.strip() for cell in row):
                    continue  # blank lines are not data
                text, label = _cells(path, line, row, cols, text_col, label_col)
                if not text.strip() and not allow_blank_text:
                    raise DataError(f"{path}, line {line}: blank text in column {text_col!r}")
                if not label:
                    raise DataError(f"{path}, line {line}: empty label in column {label_col!r}")
                if allowed is not None and label not in allowed:
                    raise DataError(
                        f"{path}, line {line}: unknown label {label!r} "
                        f"(expected one of: {', '.join(labels or [])})"
                    )
                texts.append(text)
                gold.append(label)
    except UnicodeDecodeError as exc:
        # `exc.start` counts from the start of the decoder's current chunk, not of the file:
        # find the line ourselves rather than report a misleading byte offset.
        raise DataError(
            f"{path}, line {_first_non_utf8_line(path)}: not UTF-8 text ({exc.reason}); "
            "save the file as UTF-8"
        ) from None
    except csv.Error as exc:
        raise DataError(f"{path}: malformed CSV ({exc})") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not texts:
        raise DataError(f"{path}: no data rows after the header")
    return texts, gold


def _count_lines(path: Path) -> int:
    """Newlines in the file (fast, in binary): the total the progress counts towards."""
    count = 0
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            count += chunk.count(b"\n")
    return count


def _first_non_utf8_line(path: Path) -> int | str:
    """1-based number of the first line that is not valid UTF-8 ("?" if none is found)."""
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return "?"


def _column_indices(
    path: Path, header: list[str], text_col: str, label_col: str
) -> tuple[int, int]:
    missing = [c for c in (text_col, label_col) if c not in header]
    if missing:
        names = " and ".join(repr(c) for c in missing)
        raise DataError(
            f"{path}: no column {names} in the header (columns: {', '.join(header) or 'none'}); "
            "use --text-col / --label-col"
        )
    return header.index(text_col), header.index(label_col)


def _cells(
    path: Path, line: int, row: list[str], cols: tuple[int, int], text_col: str, label_col: str
) -> tuple[str, str]:
    ti, li = cols
    if max(ti, li) >= len(row):
        raise DataError(
            f"{path}, line {line}: only {len(row)} column(s), missing {text_col!r} or {label_col!r}"
        )
    return row[ti], row[li].strip()
