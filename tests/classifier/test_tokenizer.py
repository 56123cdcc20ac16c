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
