"""Word tokenizer and vocabulary for the embedding backbone (saved as `vocab.json`).

`tokenize(text)` lowercases and splits a message into Unicode-aware words, keeping emoji and
emoticons as tokens and replacing URLs, @mentions and numbers with placeholder tokens.
`Vocab` maps tokens to ids with min-frequency / max-size cut-offs and, optionally, adds hashed word
bigrams the way fastText does: each adjacent token pair is hashed (CRC-32, stable across runs and
machines, unlike Python's `hash`) into one of `bigram_buckets` extra rows of the embedding table.

Id layout of the embedding table: `0 = <pad>`, `1 = <unk>`, then the vocabulary words, then the
bigram buckets (`len(words) .. len(words) + bigram_buckets - 1`).
"""

from __future__ import annotations

import json
import re
import zlib
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np

PAD, UNK = "<pad>", "<unk>"
URL, USER, NUM = "<url>", "<user>", "<num>"
VOCAB_FORMAT = 1

# Emoticons first (they contain punctuation the word pattern would drop), longest alternatives
# first. Both "smile" directions and the common Asian-style ones.
_EMOTICON = (
    r"(?:[<>]?[:;=8xX][\-o\*']?[\)\]\(\[dDpP/\\|@3}{]+"  # :) ;-) :D :P :/ xD :'(
    r"|[\)\]\(\[dDpP/\\|@3}{]+[\-o\*']?[:;=8][<>]?"  # (: (-;
    r"|<3+|</3|\^_*\^|\-_+\-|o_o|t_t|;_;)"
)
# Emoji: pictographs, dingbats, flags (regional indicators), keycaps, with skin-tone modifiers,
# variation selectors and zero-width-joiner sequences kept together as one token.
_EMOJI_CHAR = (
    "\U0001f000-\U0001faff\u2600-\u27bf\u2300-\u23ff\u2b00-\u2bff\u2190-\u21ff"
    "\u3030\u303d\u3297\u3299\u00a9\u00ae\u203c\u2049\u2122\u2139"
)
_EMOJI_MOD = "\U0001f3fb-\U0001f3ff\ufe0f"  # skin tones, variation selector
_EMOJI = rf"(?:[{_EMOJI_CHAR}][{_EMOJI_MOD}\u20e3]*(?:\u200d[{_EMOJI_CHAR}][{_EMOJI_MOD}]*)*)"
_TOKEN_RE = re.compile(
    rf"(?P<url>(?:https?://|www\.)\S+)"
    rf"|(?P<user>@\w+)"
    rf"|(?P<emo>{_EMOTICON})(?=\s|$|[^\w])"
    rf"|(?P<num>[+\-]?\d+(?:[.,:/]\d+)*%?)"
    rf"|(?P<word>[^\W\d_]+(?:['’][^\W\d_]+)*)"
    rf"|(?P<emoji>{_EMOJI})"
    rf"|(?P<punct>[!?]+)",
    re.UNICODE,
)
# Elongations ("soooo", "!!!!!") carry sentiment but explode the vocabulary: cap runs at 3.
_RUNS_RE = re.compile(r"(.)\1{3,}")


def tokenize(text: str) -> list[str]:
    """Split `text` into lowercase tokens (words, emoji, emoticons, `!`/`?` runs, placeholders)."""
    # Normalise the whole string once (much cheaper than per token): case, curly apostrophes,
    # and elongations ("soooo", "!!!!!") capped at three repeats.
    text = _RUNS_RE.sub(r"\1\1\1", text.lower().replace("’", "'"))
    tokens: list[str] = []
    append = tokens.append
    for match in _TOKEN_RE.finditer(text):
        kind = match.lastgroup
        if kind == "url":
            append(URL)
        elif kind == "user":
            append(USER)
        elif kind == "num":
            append(NUM)
        else:  # word, emoticon, emoji, !/? run
            append(match.group())
    return tokens


def bigram_bucket(left: str, right: str, buckets: int) -> int:
    """Stable hash of a token pair into `[0, buckets)` (CRC-32 of `left + "\\x00" + right`)."""
    return zlib.crc32(f"{left}\x00{right}".encode()) % buckets


class Vocab:
    """Token → id mapping plus hashed-bigram buckets; turns texts into id arrays."""

    def __init__(self, words: list[str], *, bigram_buckets: int = 0, lowercase: bool = True):
        if words[:2] != [PAD, UNK]:
            raise ValueError("vocabulary must start with <pad>, <unk>")
        self.words = list(words)
        self.index = {word: i for i, word in enumerate(self.words)}
        if len(self.index) != len(self.words):
            raise ValueError("vocabulary has duplicate entries")
        self.bigram_buckets = int(bigram_buckets)
        self.lowercase = lowercase

    @classmethod
    def build(
        cls,
        texts: Iterable[str],
        *,
        min_freq: int = 1,
        max_size: int | None = None,
        bigram_buckets: int = 0,
    ) -> Vocab:
        """Count tokens; keep those seen `min_freq`+ times, at most `max_size` (commonest first)."""
        return cls.build_from_tokens(
            (tokenize(text) for text in texts),
            min_freq=min_freq,
            max_size=max_size,
            bigram_buckets=bigram_buckets,
        )

    @classmethod
    def build_from_tokens(
        cls,
        token_lists: Iterable[list[str]],
        *,
        min_freq: int = 1,
        max_size: int | None = None,
        bigram_buckets: int = 0,
    ) -> Vocab:
        """Like `build`, from texts already split by `tokenize`."""
        counts: Counter[str] = Counter()
        for tokens in token_lists:
            counts.update(tokens)
        # Sort by (-count, token) so the vocabulary does not depend on the order of the texts.
        kept = sorted(
            (t for t, c in counts.items() if c >= min_freq), key=lambda t: (-counts[t], t)
        )
        if max_size is not None:
            kept = kept[: max(0, max_size - 2)]
        return cls([PAD, UNK, *kept], bigram_buckets=bigram_buckets)

    @property
    def num_words(self) -> int:
        return len(self.words)

    @property
    def size(self) -> int:
        """Rows the embedding table needs (words + bigram buckets)."""
        return len(self.words) + self.bigram_buckets

    def encode(self, text: str, max_tokens: int | None = None) -> np.ndarray:
        """Ids of `text`'s tokens (truncated to `max_tokens` words), then its bigram buckets."""
        return self.encode_tokens(tokenize(text), max_tokens)

    def encode_tokens(self, tokens: list[str], max_tokens: int | None = None) -> np.ndarray:
        """`encode` for a text already split by `tokenize`."""
        if max_tokens is not None:
            tokens = tokens[:max_tokens]
        get = self.index.get
        ids = [get(t, 1) for t in tokens]
        if self.bigram_buckets and len(tokens) > 1:
            base, buckets = len(self.words), self.bigram_buckets
            crc = zlib.crc32
            ids.extend(
                base + crc(f"{a}\x00{b}".encode()) % buckets
                for a, b in zip(tokens, tokens[1:], strict=False)
            )
        return np.asarray(ids, dtype=np.int64)

    def to_dict(self) -> dict:
        return {
            "format": VOCAB_FORMAT,
            "tokenizer": "sentibot-words-v1",
            "lowercase": self.lowercase,
            "bigram_buckets": self.bigram_buckets,
            "words": self.words,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Vocab:
        """Inverse of `to_dict`; raises `ValueError` with a plain reason on a malformed dict."""
        if not isinstance(data, dict) or data.get("format") != VOCAB_FORMAT:
            raise ValueError(f"unsupported vocabulary format (expected format {VOCAB_FORMAT})")
        words = data.get("words")
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            raise ValueError("'words' must be a list of strings")
        buckets = data.get("bigram_buckets", 0)
        if not isinstance(buckets, int) or buckets < 0:
            raise ValueError("'bigram_buckets' must be a non-negative integer")
        return cls(words, bigram_buckets=buckets, lowercase=bool(data.get("lowercase", True)))

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Vocab:
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
