"""index.lexical: BM25 (bm25s, Lucene variant) with stemming, stopwords and a filter mask."""

from __future__ import annotations

import math

import numpy as np
import pytest

from index.lexical import LexicalIndex, Tokens

K1, B = 1.5, 0.75


def bm25(tf: int, dl: int, avgdl: float, df: int, n: int) -> float:
    """One term's Lucene BM25 score (no (k1 + 1) factor, as bm25s and Lucene >= 8 compute it)."""
    idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
    return idf * tf / (tf + K1 * (1 - B + B * dl / avgdl))


# After stopwords and stemming: [overal, surviv, year] (3), [object, respons, rate, recist] (4),
# [advers, event] (2); average length 3. "at", "by" are stopwords, "2" is too short to be a token.
DOCS = ["overall survival at 2 years", "objective response rate by RECIST", "adverse events"]


@pytest.fixture
def lex() -> LexicalIndex:
    return LexicalIndex(["os", "orr", "ae"], DOCS)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("survival", [(0, bm25(1, 3, 3, 1, 3))]),
        ("Years", [(0, bm25(1, 3, 3, 1, 3))]),  # stemmed and lower-cased like the documents
        ("responses", [(1, bm25(1, 4, 3, 1, 3))]),
        ("adverse event", [(2, 2 * bm25(1, 2, 3, 1, 3))]),
        ("response rate survival", [(1, 2 * bm25(1, 4, 3, 1, 3)), (0, bm25(1, 3, 3, 1, 3))]),
    ],
)
def test_lexical_exact_scores(lex: LexicalIndex, query: str, expected: list[tuple[int, float]]) -> None:
    hits = lex.search(query, 10)
    assert [p for p, _ in hits] == [p for p, _ in expected]
    assert [s for _, s in hits] == pytest.approx([s for _, s in expected], rel=1e-5)


@pytest.mark.parametrize("query", ["", "the", "at by of", "zzzz", "2"])
def test_lexical_no_matching_word_no_hits(lex: LexicalIndex, query: str) -> None:
    assert lex.search(query, 5) == []


def test_lexical_more_words_first_then_shorter_documents() -> None:
    # [overal, surviv] (2), [overal, respons] (2), [progress, free, surviv, rate] (4): average length 8/3.
    lex = LexicalIndex([1, 2, 3], ["overall survival", "overall response", "progression free survival rate"])
    hits = lex.search("overall survival", 5)
    assert [p for p, _ in hits] == [0, 1, 2]
    assert [s for _, s in hits] == pytest.approx(
        [2 * bm25(1, 2, 8 / 3, 2, 3), bm25(1, 2, 8 / 3, 2, 3), bm25(1, 4, 8 / 3, 2, 3)], rel=1e-5
    )


def test_lexical_k_cuts(lex: LexicalIndex) -> None:
    assert [p for p, _ in lex.search("response survival adverse", 2)] == [2, 0]
    assert lex.search("response", 0) == []


def test_lexical_mask_filters_before_top_k(lex: LexicalIndex) -> None:
    query = "response rate survival adverse"
    assert [p for p, _ in lex.search(query, 1)] == [1]
    assert [p for p, _ in lex.search(query, 1, mask=np.array([True, False, True]))] == [2]
    both = lex.search(query, 5, mask=np.array([True, False, True]))
    assert [p for p, _ in both] == [2, 0]
    assert both[1][1] == pytest.approx(bm25(1, 3, 3, 1, 3), rel=1e-5)  # scores unchanged by the mask
    assert lex.search(query, 5, mask=np.zeros(3, dtype=bool)) == []
    assert lex.search("survival", 5, mask=np.array([False, True, True])) == []  # no positive score left


def test_lexical_keys_and_len(lex: LexicalIndex) -> None:
    assert len(lex) == 3 and lex.keys == ["os", "orr", "ae"]


def test_lexical_keys_must_match_texts() -> None:
    with pytest.raises(ValueError) as err:
        LexicalIndex(["a", "b"], ["one"])
    assert str(err.value) == "2 keys for 1 texts"


def test_lexical_empty_index() -> None:
    lex = LexicalIndex([], [])
    assert len(lex) == 0 and lex.search("overall survival", 5) == []


def test_lexical_rebuild_with_kept_tokens_scores_like_a_fresh_build() -> None:
    tokens = Tokens()
    texts = ["overall survival at two years", "pain after knee surgery", "tumour response rate"]
    LexicalIndex([1, 2, 3], texts, tokens)
    # One study left, one came: the rebuild tokenizes only the new text and scores as a fresh index does.
    seen = tokens.tokenizer.tokenize
    calls: list[list[str]] = []

    def counting(texts: list[str], **kwargs: object) -> object:
        calls.append(list(texts))
        return seen(texts, **kwargs)

    tokens.tokenizer.tokenize = counting
    rebuilt = LexicalIndex([2, 3, 4], [*texts[1:], "knee pain at rest"], tokens)
    assert calls == [["knee pain at rest"]]
    fresh = LexicalIndex([2, 3, 4], [*texts[1:], "knee pain at rest"])
    for query in ("knee pain", "overall survival", "tumour rate", "zzz"):
        assert rebuilt.search_keys(query, 3) == fresh.search_keys(query, 3)
    assert rebuilt.search_keys("knee pain", 3)[0][0] == 4
