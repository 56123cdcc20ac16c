"""Tokenizer and vocabulary."""

import json

import pytest

from classifier.tokenizer import NUM, PAD, UNK, URL, USER, Vocab, bigram_bucket, tokenize


def test_lowercases_and_keeps_unicode_words():
    assert tokenize("Привет МИР, café Naïve") == ["привет", "мир", "café", "naïve"]


def test_placeholders_for_urls_mentions_numbers():
    tokens = tokenize("@alice see https://example.com/x?y=1 and www.foo.org for 3.39 or 12%")
    assert tokens == [USER, "see", URL, "and", URL, "for", NUM, "or", NUM]


def test_emoji_and_emoticons_are_tokens():
    assert tokenize("great :) :-( <3 xD 😀👍🏽") == ["great", ":)", ":-(", "<3", "xd", "😀", "👍🏽"]


def test_zwj_emoji_sequence_is_one_token():
    assert tokenize("family 👨\u200d👩\u200d👧") == ["family", "👨\u200d👩\u200d👧"]


def test_apostrophes_elongation_and_exclamations():
    assert tokenize("I can’t WAIT soooooo much!!!!!") == [
        "i",
        "can't",
        "wait",
        "sooo",
        "much",
        "!!!",
    ]


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_blank_texts_give_no_tokens(text):
    assert tokenize(text) == []


def test_vocab_min_freq_and_max_size():
    texts = ["a a a b b c", "a b d"]
    vocab = Vocab.build(texts, min_freq=2)
    assert vocab.words == [PAD, UNK, "a", "b"]
    assert Vocab.build(texts, max_size=3).words == [PAD, UNK, "a"]


def test_vocab_is_independent_of_text_order():
    texts = ["x y z", "y z", "z q"]
    assert Vocab.build(texts).words == Vocab.build(list(reversed(texts))).words


def test_unknown_words_map_to_unk_and_truncation():
    vocab = Vocab.build(["good movie"])
    ids = vocab.encode("good unseen movie", max_tokens=2).tolist()
    assert ids == [vocab.index["good"], 1]


def test_hashed_bigrams_follow_the_words():
    vocab = Vocab.build(["not good at all"], bigram_buckets=50)
    ids = vocab.encode("not good").tolist()
    assert ids[:2] == [vocab.index["not"], vocab.index["good"]]
    assert ids[2] == vocab.num_words + bigram_bucket("not", "good", 50)
    assert vocab.size == vocab.num_words + 50
    assert all(i < vocab.size for i in vocab.encode("a b c d e f g h").tolist())


def test_bigram_hash_is_stable():
    # CRC-32, not Python's salted hash: the same bucket in every process and on every machine.
    assert bigram_bucket("not", "good", 2**32) == 13_537_205
    assert bigram_bucket("not", "good", 1000) == 205


def test_vocab_round_trip(tmp_path):
    vocab = Vocab.build(["hello world :)", "hello 😀"], bigram_buckets=16)
    vocab.save(tmp_path / "vocab.json")
    again = Vocab.load(tmp_path / "vocab.json")
    assert again.words == vocab.words and again.bigram_buckets == 16
    assert again.encode("hello world").tolist() == vocab.encode("hello world").tolist()
    assert json.loads((tmp_path / "vocab.json").read_text(encoding="utf-8"))["words"][0] == PAD


def test_vocab_rejects_malformed_dict():
    with pytest.raises(ValueError):
        Vocab.from_dict({"format": 1, "words": "nope"})
    with pytest.raises(ValueError):
        Vocab.from_dict({"format": 99, "words": [PAD, UNK]})


# --- negation scope marking ---------------------------------------------------------------------
def test_negation_marking_is_off_by_default():
    assert tokenize("this is not good") == ["this", "is", "not", "good"]


def test_negation_marks_words_after_a_cue_up_to_the_scope():
    assert tokenize("This is not good at all", negation_scope=2) == [
        "this",
        "is",
        "not",
        "not_good",
        "not_at",
        "all",
    ]
    assert tokenize("I don’t like it", negation_scope=3) == ["i", "don't", "not_like", "not_it"]
    assert tokenize("mustn't go", negation_scope=3) == ["mustn't", "not_go"]  # any n't form


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("not good, great", ["not", "not_good", "great"]),
        ("not good. great", ["not", "not_good", "great"]),
        ("no way!! love it", ["no", "not_way", "!!", "love", "it"]),
        ("not great but fine", ["not", "not_great", "but", "fine"]),
        ("nothing; good", ["nothing", "good"]),
    ],
)
def test_negation_scope_ends_at_punctuation_and_but(text, expected):
    assert tokenize(text, negation_scope=5) == expected


def test_negation_leaves_placeholders_and_emoji_unmarked():
    tokens = tokenize("never @bob 😀 good", negation_scope=3)
    assert tokens == ["never", USER, "😀", "not_good"]  # placeholders/emoji use up the scope


def test_negated_vocab_round_trip_and_fallback(tmp_path):
    vocab = Vocab.build(["not good", "good movie", "not bad"], negation_scope=3)
    assert "not_good" in vocab.index and "good" in vocab.index
    ids = vocab.encode("not good movie").tolist()
    # "not_movie" is unseen: it falls back to the plain word, not to <unk>.
    assert ids == [vocab.index["not"], vocab.index["not_good"], vocab.index["movie"]]
    vocab.save(tmp_path / "vocab.json")
    data = json.loads((tmp_path / "vocab.json").read_text(encoding="utf-8"))
    assert data["negation_scope"] == 3 and data["format"] == 2  # older readers refuse format 2
    again = Vocab.load(tmp_path / "vocab.json")
    assert again.negation_scope == 3
    assert again.encode("not good movie").tolist() == ids


def test_vocab_json_without_negation_option_loads_unchanged(tmp_path):
    # The exact dict every folder written before the option existed has.
    old = {
        "format": 1,
        "tokenizer": "sentibot-words-v1",
        "lowercase": True,
        "bigram_buckets": 0,
        "words": [PAD, UNK, "not", "good", "not_good"],
    }
    vocab = Vocab.from_dict(old)
    assert vocab.negation_scope == 0
    assert vocab.encode("not good").tolist() == [2, 3]
    assert vocab.to_dict() == old  # and it is written back byte for byte the same


def test_vocab_rejects_bad_negation_scope():
    with pytest.raises(ValueError, match="negation_scope"):
        Vocab.from_dict({"format": 2, "words": [PAD, UNK], "negation_scope": -1})
