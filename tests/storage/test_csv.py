"""CSV export and import."""

from __future__ import annotations

import csv

import pytest
from sqlalchemy import func, select

from storage import repositories as repo
from storage.errors import ImportFileError
from storage.models import Label, Message
from tests.storage.conftest import record

LABELS = ("negative", "neutral", "positive")


def write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


async def test_export_has_resolved_labels_with_provenance(sm, tmp_path):
    async with sm.begin() as s:
        a = (await record(s, tg_id=1, text='quote " and, comma\nnewline')).message_id
        b = (await record(s, tg_id=2, text="tie")).message_id
        await record(s, tg_id=3, text="unlabelled")
        await repo.set_label(s, a, 1, "positive", source="inline")
        await repo.set_label(s, a, 2, "positive", source="queue")
        await repo.set_label(s, b, 1, "positive", source="inline")
        await repo.set_label(s, b, 2, "negative", source="inline")
    out = tmp_path / "sub" / "labels.csv"
    async with sm() as s:
        assert await repo.export_labels_csv(s, out) == 1
    with out.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == list(repo.EXPORT_COLUMNS)
    assert rows[0]["text"] == 'quote " and, comma\nnewline'
    assert (rows[0]["label"], rows[0]["sources"], rows[0]["n_labels"]) == (
        "positive",
        "inline;queue",
        "2",
    )
    assert rows[0]["split"] == repo.split_of(a)
    assert list(tmp_path.joinpath("sub").iterdir()) == [out]  # no temp file left behind


async def test_import_then_export_round_trip(sm, tmp_path):
    src = write(tmp_path / "in.csv", "label,text,extra\nPositive,I love it,x\nneutral, meh ,y\n")
    async with sm.begin() as s:
        result = await repo.import_labels_csv(s, src, LABELS)
    assert (result.rows, result.created, result.changed, result.unchanged) == (2, 2, 0, 0)
    async with sm() as s:
        examples = await repo.labelled_examples(s)
    assert {(e.text, e.label, e.sources) for e in examples} == {
        ("I love it", "positive", ("import",)),
        ("meh", "neutral", ("import",)),
    }
    # Re-importing is harmless; a corrected label replaces the old import label.
    fixed = write(tmp_path / "fixed.csv", "text,label\nI love it,negative\nmeh,neutral\n")
    async with sm.begin() as s:
        again = await repo.import_labels_csv(s, fixed, LABELS)
    assert (again.created, again.changed, again.unchanged) == (0, 1, 1)
    async with sm() as s:
        assert await s.scalar(select(func.count()).select_from(Message)) == 2
        assert await s.scalar(select(func.count()).select_from(Label)) == 2


FORMULAS = ['=HYPERLINK("http://x")', "+1+1", "-2", "@SUM(A1)", "'quoted", "''=1", "safe = text"]


async def test_export_guards_formula_cells_and_import_undoes_it(sm, tmp_path):
    """Texts a spreadsheet would run as formulas are exported behind a `'`; importing the
    export gives back the exact texts (a plain CSV's leading `'` is kept as written)."""
    async with sm.begin() as s:
        for i, text in enumerate(FORMULAS):
            mid = (await record(s, tg_id=i + 1, text=text)).message_id
            await repo.set_label(s, mid, 1, "positive", source="inline")
    out = tmp_path / "labels.csv"
    async with sm() as s:
        assert await repo.export_labels_csv(s, out) == len(FORMULAS)
    with out.open(encoding="utf-8", newline="") as fh:
        cells = {row["text"] for row in csv.DictReader(fh)}
    assert cells == {"'" + t for t in FORMULAS[:-1]} | {"safe = text"}
    assert not any(c.startswith(("=", "+", "-", "@")) for c in cells)
    assert sorted(t for t, _ in repo.read_import_csv(out, LABELS)) == sorted(FORMULAS)
    plain = write(tmp_path / "plain.csv", "text,label\n'=kept as written,neutral\n")
    assert repo.read_import_csv(plain, LABELS) == [("'=kept as written", "neutral")]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            "text,label\nok,positive\nbad,happy\n,neutral\n",
            ["line 3: unknown label 'happy'", "line 4: empty text"],
        ),
        ("words,sentiment\na,positive\n", ["line 1 must be a header"]),
        ("", ["line 1 must be a header"]),
        ("text,label\n", ["no rows"]),
        ("text,label\nsame,positive\nsame,negative\n", ["line 3: same text as line 2"]),
        ("text,label\nonly text\n", ["line 2: expected columns"]),
        ('text,label\n"multi\nline",positive\nx,bogus\n', ["line 4: unknown label"]),
    ],
)
def test_bad_files_name_line_numbers(tmp_path, content, expected):
    path = write(tmp_path / "bad.csv", content)
    with pytest.raises(ImportFileError) as info:
        repo.read_import_csv(path, LABELS)
    for part in expected:
        assert part in str(info.value)
    assert info.value.exit_code == 2


def test_missing_and_binary_files(tmp_path):
    with pytest.raises(ImportFileError, match="no such file"):
        repo.read_import_csv(tmp_path / "nope.csv", LABELS)
    binary = tmp_path / "bin.csv"
    binary.write_bytes(b"text,label\n\xff\xfe\x00bad,positive\n")
    with pytest.raises(ImportFileError, match="UTF-8"):
        repo.read_import_csv(binary, LABELS)


def test_many_errors_are_summarised(tmp_path):
    path = write(tmp_path / "bad.csv", "text,label\n" + "x,nope\n" * 25)
    with pytest.raises(ImportFileError, match="25 bad row.*and 15 more"):
        repo.read_import_csv(path, LABELS)


async def test_failed_import_leaves_nothing(sm, monkeypatch):
    """A failure half way through the import rolls back the messages already added."""
    calls = 0
    real = repo.csvio.set_label

    async def flaky(*args, **kwargs):
        nonlocal calls
        calls += 1
        raise RuntimeError("disk on fire")

    async with sm.begin() as s:
        await repo.import_labels(s, [("existing", "positive")])
    monkeypatch.setattr(repo.csvio, "set_label", flaky)
    with pytest.raises(RuntimeError):
        async with sm.begin() as s:
            await repo.import_labels(s, [("new one", "neutral"), ("existing", "negative")])
    assert calls == 1 and real is not flaky
    async with sm() as s:
        assert await s.scalar(select(func.count()).select_from(Message)) == 1
