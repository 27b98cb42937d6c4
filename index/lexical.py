"""BM25 over the same texts the dense index embeds (``bm25s``, English stopwords, Snowball stemming).

The index is rebuilt from the stored texts rather than updated in place (bm25s has no incremental add);
that takes well under a second per ten thousand documents, and keeps the lexical side trivially consistent
with the vector side after adds and removes.
"""

from __future__ import annotations

from collections.abc import Container, Sequence

import bm25s
import numpy as np
import numpy.typing as npt
import Stemmer

_STEMMER = Stemmer.Stemmer("english")


class LexicalIndex:
    """BM25 over ``texts``, addressed by the caller's integer keys (study numbers, row ids)."""

    def __init__(self, keys: Sequence[int], texts: Sequence[str]) -> None:
        if len(keys) != len(texts):
            raise ValueError(f"{len(keys)} keys for {len(texts)} texts")
        self.keys = list(keys)
        self._tokenizer = bm25s.tokenization.Tokenizer(stemmer=_STEMMER, stopwords="en")
        self._bm25 = bm25s.BM25()
        if texts:
            tokens = self._tokenizer.tokenize(list(texts), return_as="ids", show_progress=False)
            self._bm25.index(tokens, show_progress=False)

    def __len__(self) -> int:
        return len(self.keys)

    def search(
        self, query: str, k: int, mask: npt.NDArray[np.bool_] | None = None
    ) -> list[tuple[int, float]]:
        """Top-``k`` ``(position, score)`` pairs with a positive score, best first.

        Args:
            query: free text.
            k: hits wanted.
            mask: if given, only positions where it is true can be returned (filtering before top-k).
        """
        n = len(self.keys) if mask is None else int(mask.sum())
        k_eff = min(k, n)
        if k_eff <= 0:
            return []
        tokens = self._tokenizer.tokenize([query], update_vocab=False, return_as="ids", show_progress=False)
        weights = None if mask is None else mask.astype(np.float32)
        # n_threads=0 runs in this thread; any other value starts a thread pool on every call.
        docs, scores = self._bm25.retrieve(
            tokens, k=k_eff, show_progress=False, weight_mask=weights, n_threads=0
        )
        return [(int(d), float(s)) for d, s in zip(docs[0], scores[0], strict=True) if s > 0]

    def search_keys(
        self, query: str, k: int, allowed: Container[int] | None = None
    ) -> list[tuple[int, float]]:
        """Like :meth:`search`, by key: top-``k`` ``(key, score)``, only keys in ``allowed`` if given."""
        mask = None
        if allowed is not None:
            mask = np.fromiter((key in allowed for key in self.keys), dtype=bool, count=len(self.keys))
        return [(self.keys[pos], score) for pos, score in self.search(query, k, mask)]
