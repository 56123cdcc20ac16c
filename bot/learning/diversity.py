"""A diverse /label queue: what enters it, and which of the next items a person is shown.

Entry (each message once, when the queue first looks at it):
- the same normalized text (`text_key`: lower case, links, mentions, numbers and punctuation
  removed, repeated letters squeezed) as an item already in the queue is held out as a
  `duplicate`: a burst of copies adds one item;
- an author's messages beyond QUEUE_MAX_PER_AUTHOR_HOUR within any hour are held out
  (`author_hour`): a 100-message burst adds at most the cap.

Hand-out (`preferred_order`, among the first few items in queue order): an item that reads
nearly the same to the served model as one already labelled or shown in this round goes to the
back: the Jaccard similarity of the two texts' token sets, as the model's own tokenizer makes
them (words and hashed bigrams, or word pieces), ≥ QUEUE_SIMILARITY. The pooled sentence vectors
of the embedding model measure sentiment rather than wording ("I love this" and "Great game
tonight" have cosine 0.99), so they cannot tell a near copy from another happy message
(docs/learning.md has the figures). Items of an author
or chat that already gave QUEUE_ROUND_MAX_PER_AUTHOR / _PER_CHAT items to this round (a round
= the time one model version is active; its order changes with the model). These are
preferences: when only such items are left, they are shown rather than an empty queue.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from storage import repositories as repo

WINDOW = timedelta(hours=1)
_LINK = re.compile(r"(https?://|www\.)\S+")
_MENTION = re.compile(r"[@#]\w+")
_NOT_LETTER = re.compile(r"[\W\d_]+", re.UNICODE)
_REPEAT = re.compile(r"(.)\1{2,}")


def normalize(text: str) -> str:
    """The text as the duplicate check sees it: "LOL!!! see http://x.y @bob 42" → "lol see"."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _MENTION.sub(" ", _LINK.sub(" ", text))
    text = _REPEAT.sub(r"\1\1", _NOT_LETTER.sub(" ", text))
    return " ".join(text.split())


def text_key(text: str) -> str:
    """32 hex characters naming the normalized text (stored in `queue_entries.text_key`). A text
    with no letters left (emoji only) is its own key: "😂" and "😡" are not duplicates."""
    basis = normalize(text) or "\0" + text.strip()
    return hashlib.blake2b(basis.encode(), digest_size=16).hexdigest()


def admit(
    messages: Sequence[repo.NewMessage],
    open_keys: set[str],
    author_times: Mapping[int, list],
    max_per_author_hour: int,
) -> list[repo.Admission]:
    """The queue's verdict on each new message (oldest first): open, `duplicate` or
    `author_hour`. `open_keys`: keys of open entries; `author_times`: when each author's open
    entries of the last hour were received (sorted). Both are updated as messages enter."""
    keys = set(open_keys)
    times = {author: sorted(ts) for author, ts in author_times.items()}
    verdicts = []
    for message in messages:
        key = text_key(message.text)
        reason = None
        if key in keys:
            reason = "duplicate"
        elif message.author_id is not None and max_per_author_hour > 0:
            mine = times.setdefault(message.author_id, [])
            since = message.received_at - WINDOW
            in_window = len(mine) - bisect_right(mine, since)
            if in_window >= max_per_author_hour:
                reason = "author_hour"
            else:
                mine.append(message.received_at)
        if reason is None:
            keys.add(key)
        verdicts.append(repo.Admission(message, key, reason))
    return verdicts


def token_sets(tokenize: Callable[[list[str]], list], texts: Sequence[str]) -> list[frozenset]:
    """Each text's set of token ids under the model's tokenizer (padding id 0 left out)."""
    return [frozenset(int(t) for t in ids) - {0} for ids in tokenize(list(texts))]


def jaccard(a: frozenset, b: frozenset) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def near_duplicates(
    candidates: Sequence[frozenset], seen: Sequence[frozenset], threshold: float
) -> list[bool]:
    """For each candidate: is its token-set Jaccard similarity to any `seen` one ≥ threshold?

    Only sets sharing a token can reach a positive threshold, so each candidate is compared with
    the seen sets that share one of its tokens (an inverted index)."""
    if threshold > 1.0 or not seen:
        return [False] * len(candidates)
    index: dict[int, list[int]] = {}
    for j, tokens in enumerate(seen):
        for token in tokens:
            index.setdefault(token, []).append(j)
    result = []
    for tokens in candidates:
        sharing = {j for token in tokens for j in index.get(token, ())}
        result.append(any(jaccard(tokens, seen[j]) >= threshold for j in sharing))
    return result


@dataclass(frozen=True)
class RoundCaps:
    """How many items one author / one chat may give a round before others go first (0: off)."""

    per_author: int = 0
    per_chat: int = 0


def preferred_order(
    candidates: Sequence[repo.QueueItem],
    shown: Iterable[repo.ShownItem],
    duplicate: Sequence[bool],
    caps: RoundCaps,
) -> list[repo.QueueItem]:
    """The candidates, the preferred first (queue order kept within both groups): not a near
    duplicate, and the author and chat still under their round caps."""
    shown = list(shown)
    authors = Counter(s.author_id for s in shown if s.author_id is not None)
    chats = Counter(s.chat_id for s in shown if s.chat_id is not None)
    first, later = [], []
    for item, dup in zip(candidates, duplicate, strict=True):
        capped = _over(authors, item.author_id, caps.per_author) or _over(
            chats, item.chat_id, caps.per_chat
        )
        (later if dup or capped else first).append(item)
    return first + later


def _over(counts: Counter, key: int | None, cap: int) -> bool:
    return cap > 0 and key is not None and counts[key] >= cap
