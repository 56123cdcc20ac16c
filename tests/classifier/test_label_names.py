"""Label names are plain words, so they fit Telegram callback data and the bot's button parser."""

from __future__ import annotations

import pytest

from bot import keyboards
from classifier.data import infer_labels, parse_label_list
from classifier.errors import DataError


@pytest.mark.parametrize(
    "labels", ["0,1", "negative,positive", "Neg,Pos", "a_b,c-d", "x" * 32 + ",y"]
)
def test_plain_word_labels_are_accepted_and_round_trip_through_buttons(labels):
    names = parse_label_list(labels)
    for name in names:
        assert keyboards.parse_feedback(keyboards.feedback_data(12, name)).label == name


@pytest.mark.parametrize("labels", ["very positive,negative", "a:b,c", "x" * 33 + ",y", "-a,b"])
def test_label_list_with_a_non_word_is_refused_naming_it(labels):
    with pytest.raises(DataError, match="not a plain word"):
        parse_label_list(labels)


def test_labels_found_in_data_are_checked_too():
    assert infer_labels(["1", "0", "1"]) == ["0", "1"]
    with pytest.raises(DataError, match="'very positive'"):
        infer_labels(["very positive", "negative"], source="train.csv")
