"""index.similar: per-field similarity, Jaccard overlaps, the weighted combination and the reasons given."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from index.documents import StudyEntry
from index.filters import SearchFilters
from index.similar import DEFAULT_WEIGHTS, combine, jaccard, shared, similar_trials
from index.trial_index import TrialIndex
from tests.index.conftest import ENTRIES


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (["os", "pfs"], ["pfs"], 0.5),
        (["os", "pfs"], ["pfs", "os"], 1.0),
        (["os"], ["orr"], 0.0),
        (["a", "a", "b"], ["a"], 0.5),  # sets: repeats do not count
        (["PHASE1", "PHASE2"], ["PHASE2", "PHASE3"], 1 / 3),
        ([], ["os"], None),
        (["os"], [], None),
        ([], [], None),
    ],
)
def test_similar_jaccard(a: list[str], b: list[str], expected: float | None) -> None:
    assert jaccard(a, b) == expected


@given(a=st.lists(st.sampled_from("abcdef")), b=st.lists(st.sampled_from("abcdef")))
def test_similar_jaccard_symmetric_and_bounded(a: list[str], b: list[str]) -> None:
    j = jaccard(a, b)
    assert j == jaccard(b, a)
    assert j is None or 0.0 <= j <= 1.0
    assert (j is None) == (not a or not b)


def test_similar_shared_ignores_case_and_punctuation_keeps_a_order() -> None:
    a = ["Non-Small Cell Lung Cancer", "Asthma", "Breast  Cancer", "NSCLC"]
    b = ["breast cancer", "non small cell lung cancer"]
    assert shared(a, b) == ["Non-Small Cell Lung Cancer", "Breast  Cancer"]
    assert shared([], b) == [] and shared(a, []) == []


def test_similar_combine_weighted_sum_of_present_fields() -> None:
    weights = {"conditions": 1.0, "tci": 0.6, "endpoints": 0.1}
    assert combine({"conditions": 0.5, "tci": None, "endpoints": 1.0}, weights) == pytest.approx(0.6)
    assert combine({"unknown": 0.9, "tci": 1.0}, weights) == pytest.approx(0.6)
    assert combine({}, weights) == 0.0


def test_similar_copy_of_a_study_finds_the_original_with_every_field_at_one(index: TrialIndex) -> None:
    original = ENTRIES[1]
    twin = copy.deepcopy(original)
    twin.id = "NEW-RECORD"
    [top, *_] = index.similar(twin, k=5)
    assert top.id == original.id and top.title == original.title
    fields = top.reasons["field_scores"]
    assert fields == {
        "tci": 1.0,
        "conditions": 1.0,
        "conditions_best": 1.0,
        "conditions_cover": 1.0,
        "interventions": 1.0,
        "interventions_best": 1.0,
        "interventions_cover": 1.0,
        "summary": 1.0,
        "endpoints": 1.0,
        "design": 1.0,
    }
    assert top.score == pytest.approx(sum(DEFAULT_WEIGHTS[name] for name in fields), abs=1e-5)
    assert top.reasons["shared_conditions"] == original.conditions
    assert top.reasons["shared_interventions"] == original.interventions
    assert top.reasons["shared_endpoints"] == original.endpoints
    assert top.reasons["shared_phases"] == original.phases


def test_similar_by_id_excludes_itself_sorted_and_cut(index: TrialIndex) -> None:
    for entry in ENTRIES:
        hits = index.similar(entry.id, k=3)
        assert len(hits) == 3 and entry.id not in {h.id for h in hits}
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert len(index.similar(ENTRIES[0].id, k=50)) == 4


def test_similar_ranks_the_other_aml_trial_first(index: TrialIndex) -> None:
    assert index.similar("NCT03672851", k=1)[0].id == "NCT04904237"
    assert index.similar("NCT04904237", k=1)[0].id == "NCT03672851"


def test_similar_score_is_symmetric_between_indexed_studies(index: TrialIndex) -> None:
    # "cover" fields are one-sided by design (how much of the query a candidate covers); the rest are not.
    weights = {name: w for name, w in DEFAULT_WEIGHTS.items() if not name.endswith("_cover")}
    scores = {
        (a.id, h.id): h.score for a in ENTRIES for h in similar_trials(index, a.id, k=10, weights=weights)
    }
    for (a, b), score in scores.items():
        assert scores[(b, a)] == pytest.approx(score, abs=1e-5)


def test_similar_score_is_the_weighted_field_scores(index: TrialIndex) -> None:
    for hit in index.similar("NCT06177015", k=4):
        assert hit.score == pytest.approx(combine(hit.reasons["field_scores"], DEFAULT_WEIGHTS), abs=1e-3)


def test_similar_explicit_weights_known_answer(index: TrialIndex) -> None:
    query, other = "NCT03672851", "NCT04904237"
    a, b = index.study_vectors(query), index.study_vectors(other)
    [hit] = [h for h in similar_trials(index, query, k=10, weights={"conditions": 1.0}) if h.id == other]
    assert hit.score == pytest.approx(float(a["conditions"] @ b["conditions"]), abs=1e-6)
    [hit] = [h for h in similar_trials(index, query, k=10, weights={"design": 2.0}) if h.id == "NCT06834399"]
    assert hit.score == 0.0  # PHASE1 vs PHASE2
    hits = similar_trials(index, "NCT06177015", k=10, weights={"design": 1.0})
    assert (hits[0].id, hits[0].score) == ("NCT00668018", 1.0)  # the other phase 3 study


@pytest.mark.parametrize(
    "kwargs", [{"phases": ["3"]}, {"condition": "leukemia"}, {"endpoints": ["overall_survival"]}]
)
def test_similar_filters_hold_for_every_hit(index: TrialIndex, kwargs: dict[str, object]) -> None:
    filters = SearchFilters.make(**kwargs)  # type: ignore[arg-type]
    expected = {e.id for e in ENTRIES if filters.trial_matches(e)}
    for entry in ENTRIES:
        hits = index.similar(entry.id, k=10, filters=filters)
        assert {h.id for h in hits} == expected - {entry.id}


def test_similar_filter_matching_nothing(index: TrialIndex) -> None:
    assert index.similar("NCT03672851", k=5, filters=SearchFilters.make(phases=["4"])) == []


def test_similar_new_record_with_little_text(index: TrialIndex) -> None:
    hits = index.similar(StudyEntry(id="NEW", conditions=["Metastatic Prostate Cancer"]), k=2)
    assert hits[0].id == "NCT06177015"
    assert hits[0].reasons["field_scores"]["conditions"] == pytest.approx(1.0, abs=1e-4)
    assert hits[0].reasons["shared_conditions"] == ["Metastatic Prostate Cancer"]
    assert index.similar(StudyEntry(id="NOTHING"), k=3) == []


def test_similar_errors(index: TrialIndex) -> None:
    with pytest.raises(ValueError) as err:
        index.similar("NCT03672851", k=0)
    assert str(err.value) == "k must be at least 1, got 0"
    with pytest.raises(KeyError, match="NCT99999999"):
        index.similar("NCT99999999")


def test_similar_study_vectors_match_a_new_record_of_the_same_study(index: TrialIndex) -> None:
    """The indexed path (stored vectors) and the new-record path (encoded now) agree."""
    by_id = index.similar("NCT06834399", k=4)
    twin = copy.deepcopy(ENTRIES[1])
    by_record = index.similar(twin, k=4)  # same id: excluded like the indexed query
    assert [h.id for h in by_record] == [h.id for h in by_id]
    np.testing.assert_allclose([h.score for h in by_record], [h.score for h in by_id], atol=1e-5)
