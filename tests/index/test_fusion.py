"""index.fusion: reciprocal rank fusion, exact scores and deterministic order."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from index.fusion import RRF_K, reciprocal_rank_fusion


def test_rrf_known_answer_small_k() -> None:
    assert reciprocal_rank_fusion([["a", "b"], ["b", "c"]], k=1) == [
        ("b", 1 / 3 + 1 / 2),
        ("a", 1 / 2),
        ("c", 1 / 3),
    ]


def test_rrf_default_k_is_60() -> None:
    assert RRF_K == 60
    out = reciprocal_rank_fusion([[10, 20, 30], [30, 10]])
    assert out == [(10, 1 / 61 + 1 / 62), (30, 1 / 63 + 1 / 61), (20, 1 / 62)]


def test_rrf_ties_keep_first_seen_order() -> None:
    # x and y have the same score either way round; x was seen first.
    assert reciprocal_rank_fusion([["x", "y"], ["y", "x"]]) == [
        ("x", 1 / 61 + 1 / 62),
        ("y", 1 / 62 + 1 / 61),
    ]
    assert [k for k, _ in reciprocal_rank_fusion([["q"], ["p"]])] == ["q", "p"]


def test_rrf_weights() -> None:
    assert reciprocal_rank_fusion([["a"], ["b"]], weights=[1.0, 2.0]) == [("b", 2 / 61), ("a", 1 / 61)]
    assert reciprocal_rank_fusion([["a", "b"]], k=0, weights=[0.5]) == [("a", 0.5), ("b", 0.25)]


def test_rrf_weights_must_match_rankings() -> None:
    with pytest.raises(ValueError) as err:
        reciprocal_rank_fusion([["a"], ["b"]], weights=[1.0])
    assert str(err.value) == "1 weights for 2 rankings"


def test_rrf_empty() -> None:
    assert reciprocal_rank_fusion([]) == []
    assert reciprocal_rank_fusion([[], []]) == []
    assert reciprocal_rank_fusion([[], ["a"]]) == [("a", 1 / 61)]


rankings = st.lists(
    st.lists(st.integers(0, 30), unique=True, max_size=15),
    min_size=1,
    max_size=5,
)


@given(rankings=rankings, data=st.data())
def test_rrf_scores_do_not_depend_on_ranking_order(rankings: list[list[int]], data: st.DataObject) -> None:
    shuffled = data.draw(st.permutations(rankings))
    a = dict(reciprocal_rank_fusion(rankings))
    b = dict(reciprocal_rank_fusion(shuffled))
    assert a.keys() == b.keys()
    for key, score in a.items():
        assert b[key] == pytest.approx(score, rel=1e-12)
        expected = sum(1 / (RRF_K + r.index(key) + 1) for r in rankings if key in r)
        assert score == pytest.approx(expected, rel=1e-12)


@given(ranking=st.lists(st.text(max_size=3), unique=True, max_size=20), copies=st.integers(1, 4))
def test_rrf_identical_rankings_keep_their_order(ranking: list[str], copies: int) -> None:
    fused = reciprocal_rank_fusion([ranking] * copies)
    assert [k for k, _ in fused] == ranking
    assert [s for _, s in fused] == pytest.approx([copies / (RRF_K + i) for i in range(1, len(ranking) + 1)])


@given(rankings=rankings)
def test_rrf_output_is_sorted_and_complete(rankings: list[list[int]]) -> None:
    fused = reciprocal_rank_fusion(rankings)
    scores = [s for _, s in fused]
    assert scores == sorted(scores, reverse=True)
    assert {k for k, _ in fused} == {k for r in rankings for k in r}
