"""Word tokenizer and vocabulary for the embedding backbone (saved as `vocab.json`).

`tokenize(text)` lowercases and splits a message into Unicode-aware words, keeping emoji and
emoticons as tokens and replacing URLs, @mentions and numbers with placeholder tokens.
`Vocab` maps tokens to ids with min-frequency / max-size cut-offs and, optionally, adds hashed word
bigrams the way fastText does: each adjacent token pair is hashed (CRC-32, stable across runs and
machines, unlike Python's `hash`) into one of `bigram_buckets` extra rows of the embedding table.

Negation scope marking (optional, `negation_scope=N`; Das & Chen 2001, Pang et al. 2002): after a
negation cue ("not", "never", "no", any "n't" form, …) the next words, up to N of them and never
past clause punctuation (`.,;:!?`) or "but", become `not_<word>` tokens, so "not good" reads as
`not`, `not_good` and the model (and the lexicon prior) can give a negated word its own meaning.
A negated form the vocabulary does not know falls back to the plain word (not to `<unk>`). The
option is part of the saved vocabulary: `vocab.json` without it (every folder written before it
existed) tokenises exactly as before, and a vocabulary with it is written as format 2, which older
code refuses instead of silently tokenising differently.

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
VOCAB_FORMAT = 1  # written when negation marking is off (byte-identical to older folders)
VOCAB_FORMAT_NEGATION = 2  # written when it is on: older readers refuse it rather than mis-read it
NEG_PREFIX = "not_"  # words never contain "_" (see _TOKEN_RE), so a marked token cannot collide

# Negation cues (VADER's list, as our tokenizer splits it); any other "...n't" word is one too.
NEGATION_CUES = frozenset(
    (
        "not", "no", "never", "none", "nobody", "nothing", "nowhere", "neither", "nor", "cannot",
        "can't", "don't", "doesn't", "didn't", "isn't", "aren't", "wasn't", "weren't", "won't",
        "wouldn't", "shouldn't", "couldn't", "hasn't", "haven't", "hadn't", "ain't", "dont",
        "cant", "wont", "isnt", "didnt", "doesnt", "without",
    )
)  # fmt: skip
# Words that end a negation scope as punctuation does ("not great but fine": "fine" is plain).
_SCOPE_BREAKERS = frozenset(("but", "however", "although", "though", "yet"))
_CLAUSE_PUNCT_RE = re.compile(r"[.,;:!?]")
_PLACEHOLDERS = {"url": URL, "user": USER, "num": NUM}

# Emoticons first (they contain punctuation the word pattern would drop), longest alternatives
# first. Both "smile" directions and the common Asian-style ones.
_EMOTICON = (
    r"(?:[<>]?[:;=8xX][\-o\*']?[\)\]\(\[dDpP/\\|@3}{]+"  # :) ;-) :D :P :/ xD :'(
    r"|[\)\]\(\[dDpP/\\|@3}{]+[\-o\*']?[:;=8][<>]?"  # (: (-;
    r"|<3+|</3|\^_*\^|\-_+\-|o_o|t_t|;_;)"
)
# Emoji: pictographs, dingbats, arrows, symbols, with skin-tone modifiers, variation selectors
# and zero-width-joiner sequences kept together as one token. Known gaps (kept: changing them
# would change how saved vocabularies tokenise): a flag is two regional-indicator tokens
# ("🇺🇸" → "🇺", "🇸"), and a keycap reads as its base ("1️⃣" → <num>; "#️⃣" is dropped).
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


def tokenize(text: str, *, negation_scope: int = 0) -> list[str]:
    """Split `text` into lowercase tokens (words, emoji, emoticons, `!`/`?` runs, placeholders).

    `negation_scope > 0` marks up to that many words after a negation cue as `not_<word>` (see
    the module docstring); 0 (the default) leaves every token as is.
    """
    # Normalise the whole string once (much cheaper than per token): case, curly apostrophes,
    # and elongations ("soooo", "!!!!!") capped at three repeats.
    text = _RUNS_RE.sub(r"\1\1\1", text.lower().replace("’", "'"))
    if negation_scope > 0:
        return _tokenize_marked(text, negation_scope)
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


def is_negation_cue(token: str) -> bool:
    """Whether `token` (as `tokenize` returns it) opens a negation scope."""
    return token in NEGATION_CUES or token.endswith("n't")


def _tokenize_marked(text: str, scope: int) -> list[str]:
    """`tokenize` of normalised `text`, with negation scopes marked."""
    tokens: list[str] = []
    left = 0  # words of the current negation scope still to mark
    end = 0  # where the previous match ended: punctuation in between closes the scope
    for match in _TOKEN_RE.finditer(text):
        kind = match.lastgroup
        if left and _CLAUSE_PUNCT_RE.search(text, end, match.start()):
            left = 0
        end = match.end()
        if kind != "word":
            token = _PLACEHOLDERS.get(kind) or match.group()
            left = 0 if kind == "punct" else max(0, left - 1)  # "!"/"?" end the clause
            tokens.append(token)
            continue
        word = match.group()
        if is_negation_cue(word):  # a cue opens a fresh scope (and is not marked itself)
            tokens.append(word)
            left = scope
        elif word in _SCOPE_BREAKERS:
            tokens.append(word)
            left = 0
        elif left:
            tokens.append(NEG_PREFIX + word)
            left -= 1
        else:
            tokens.append(word)
    return tokens


def bigram_bucket(left: str, right: str, buckets: int) -> int:
    """Stable hash of a token pair into `[0, buckets)` (CRC-32 of `left + "\\x00" + right`)."""
    return zlib.crc32(f"{left}\x00{right}".encode()) % buckets


class Vocab:
    """Token → id mapping plus hashed-bigram buckets; turns texts into id arrays.

    `lowercase` is recorded for information only and is always true in practice: `tokenize`
    always lowercases, whatever it says. It is kept (and written back exactly as read) so that
    existing vocab.json files load and re-save byte for byte the same.
    """

    def __init__(
        self,
        words: list[str],
        *,
        bigram_buckets: int = 0,
        lowercase: bool = True,
        negation_scope: int = 0,
    ):
        if words[:2] != [PAD, UNK]:
            raise ValueError("vocabulary must start with <pad>, <unk>")
        self.words = list(words)
        self.index = {word: i for i, word in enumerate(self.words)}
        if len(self.index) != len(self.words):
            raise ValueError("vocabulary has duplicate entries")
        self.bigram_buckets = int(bigram_buckets)
        self.lowercase = lowercase  # informational: see the class docstring
        self.negation_scope = int(negation_scope)  # 0: no negation marking (the old behaviour)

    @classmethod
    def build(
        cls,
        texts: Iterable[str],
        *,
        min_freq: int = 1,
        max_size: int | None = None,
        bigram_buckets: int = 0,
        negation_scope: int = 0,
    ) -> Vocab:
        """Count tokens; keep those seen `min_freq`+ times, at most `max_size` (commonest first)."""
        return cls.build_from_tokens(
            (tokenize(text, negation_scope=negation_scope) for text in texts),
            min_freq=min_freq,
            max_size=max_size,
            bigram_buckets=bigram_buckets,
            negation_scope=negation_scope,
        )

    @classmethod
    def build_from_tokens(
        cls,
        token_lists: Iterable[list[str]],
        *,
        min_freq: int = 1,
        max_size: int | None = None,
        bigram_buckets: int = 0,
        negation_scope: int = 0,
    ) -> Vocab:
        """Like `build`, from texts already split by `tokenize` (with the same `negation_scope`)."""
        counts: Counter[str] = Counter()
        for tokens in token_lists:
            counts.update(tokens)
        # Sort by (-count, token) so the vocabulary does not depend on the order of the texts.
        kept = sorted(
            (t for t, c in counts.items() if c >= min_freq), key=lambda t: (-counts[t], t)
        )
        if max_size is not None:
            kept = kept[: max(0, max_size - 2)]
        return cls([PAD, UNK, *kept], bigram_buckets=bigram_buckets, negation_scope=negation_scope)

    @property
    def num_words(self) -> int:
        return len(self.words)

    @property
    def size(self) -> int:
        """Rows the embedding table needs (words + bigram buckets)."""
        return len(self.words) + self.bigram_buckets

    def encode(self, text: str, max_tokens: int | None = None) -> np.ndarray:
        """Ids of `text`'s tokens (truncated to `max_tokens` words), then its bigram buckets."""
        return self.encode_tokens(tokenize(text, negation_scope=self.negation_scope), max_tokens)

    def encode_tokens(self, tokens: list[str], max_tokens: int | None = None) -> np.ndarray:
        """`encode` for a text already split by `tokenize` (with this vocabulary's options)."""
        if max_tokens is not None:
            tokens = tokens[:max_tokens]
        get = self.index.get
        if self.negation_scope:
            # An unseen negated form keeps its word's meaning rather than becoming <unk>.
            cut = len(NEG_PREFIX)
            ids = [get(t) or get(t[cut:] if t.startswith(NEG_PREFIX) else t, 1) for t in tokens]
        else:
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
        data = {
            "format": VOCAB_FORMAT_NEGATION if self.negation_scope else VOCAB_FORMAT,
            "tokenizer": "sentibot-words-v1",
            "lowercase": self.lowercase,
            "bigram_buckets": self.bigram_buckets,
        }
        if self.negation_scope:  # absent = 0, so vocabularies without it stay as they were
            data["negation_scope"] = self.negation_scope
        return {**data, "words": self.words}

    @classmethod
    def from_dict(cls, data: dict) -> Vocab:
        """Inverse of `to_dict`; raises `ValueError` with a plain reason on a malformed dict."""
        formats = (VOCAB_FORMAT, VOCAB_FORMAT_NEGATION)
        if not isinstance(data, dict) or data.get("format") not in formats:
            raise ValueError(f"unsupported vocabulary format (expected format {formats})")
        words = data.get("words")
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            raise ValueError("'words' must be a list of strings")
        buckets = data.get("bigram_buckets", 0)
        if not isinstance(buckets, int) or buckets < 0:
            raise ValueError("'bigram_buckets' must be a non-negative integer")
        scope = data.get("negation_scope", 0)
        if not isinstance(scope, int) or isinstance(scope, bool) or scope < 0:
            raise ValueError("'negation_scope' must be a non-negative integer")
        return cls(
            words,
            bigram_buckets=buckets,
            lowercase=bool(data.get("lowercase", True)),
            negation_scope=scope,
        )

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Vocab:
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
