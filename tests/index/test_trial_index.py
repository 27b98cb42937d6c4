"""index.trial_index: add/replace/remove, dense/lexical/hybrid search, filters before top-k, save and load."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from index import files
from index.documents import StudyEntry
from index.encoder import HashingEncoder, encode, normalise
from index.files import META, IndexFileError
from index.filters import SearchFilters
from index.fusion import reciprocal_rank_fusion
from index.store import IndexKind, StoreError
from index.trial_index import (
    FUSION_DEPTH,
    MAX_SLOTS,
    STORES,
    OutcomeHit,
    SearchMode,
    TrialIndex,
    row_id,
    split_row_id,
)
from tests.conftest import ROOT
from tests.index.conftest import ENTRIES, all_results, outcome

COUNTS = {
    "studies": 5,
    "tci_vectors": 5,
    "conditions_vectors": 6,  # one per condition
    "interventions_vectors": 7,  # one per intervention
    "summary_vectors": 4,  # NCT00668018 has no summary
    "outcomes_vectors": 9,
}
IDS = [e.id for e in ENTRIES]


# -- row ids ---------------------------------------------------------------------------------------------


def test_row_id_packs_study_number_and_slot() -> None:
    assert row_id(3, 5) == 3 * 65536 + 5 == 196613
    assert split_row_id(196613) == (3, 5)
    assert row_id(0, 0) == 0 and row_id(0, MAX_SLOTS - 1) == 65535
    with pytest.raises(StoreError) as err:
        row_id(1, MAX_SLOTS)
    assert str(err.value) == "slot 65536 out of range: a study can have at most 65536 rows per field"


@given(no=st.integers(0, 2**46), slot=st.integers(0, MAX_SLOTS - 1))
def test_row_id_round_trip(no: int, slot: int) -> None:
    assert split_row_id(row_id(no, slot)) == (no, slot)
    assert 0 <= row_id(no, slot) < 2**63


# -- contents --------------------------------------------------------------------------------------------


def test_trial_index_add_counts_and_ids(index: TrialIndex) -> None:
    assert index.counts() == COUNTS
    assert index.ids() == IDS and len(index) == 5
    assert "NCT00668018" in index and "NCT99999999" not in index
    assert index.get("NCT00668018") == ENTRIES[3]
    with pytest.raises(KeyError) as err:
        index.get("NCT99999999")
    assert err.value.args[0] == "study 'NCT99999999' is not in the index"


def test_trial_index_texts_to_encode_exact(index: TrialIndex) -> None:
    assert index.texts_to_encode([ENTRIES[3]]) == [
        "Vardenafil in Men With Erectile Dysfunction. Conditions: Erectile Dysfunction. "
        "Interventions: Levitra (Vardenafil, BAY38-9456)",
        "Erectile Dysfunction",
        "Levitra (Vardenafil, BAY38-9456)",
        "International Index of Erectile Function",
    ]


def test_trial_index_study_vectors(index: TrialIndex, hashing: HashingEncoder) -> None:
    entry = ENTRIES[0]
    vecs = index.study_vectors(entry.id)
    assert sorted(vecs) == sorted(STORES)
    for name in ("tci", "summary"):
        np.testing.assert_allclose(vecs[name], encode(hashing, [entry.field_text(name)])[0], atol=1e-6)
    # One row per condition / intervention; the study's vector is their normalised mean.
    for name, items in (("conditions", entry.conditions), ("interventions", entry.interventions)):
        rows = index.study_rows(entry.id, name)
        np.testing.assert_allclose(rows, encode(hashing, items), atol=1e-6)
        np.testing.assert_allclose(vecs[name], normalise(rows.mean(axis=0, keepdims=True))[0], atol=1e-6)
    outcome_vecs = encode(hashing, [o.text for o in entry.outcomes])
    np.testing.assert_allclose(
        vecs["outcomes"], normalise(outcome_vecs.mean(axis=0, keepdims=True))[0], atol=1e-6
    )
    assert "summary" not in index.study_vectors("NCT00668018")


def test_trial_index_long_summary_is_several_windows() -> None:
    idx = TrialIndex(HashingEncoder(window_words=8))
    words = [f"w{i}" for i in range(20)]
    idx.add([StudyEntry(id="LONG", title="t", summary=" ".join(words))])
    assert idx.counts()["summary_vectors"] == 3
    [hit] = idx.search(" ".join(words[16:]), k=1, mode=SearchMode.DENSE)
    assert hit.reasons["matched_field"] == "summary[2]" and hit.score == pytest.approx(1.0)
    assert hit.reasons["matched_text"] == " ".join(words)
    idx.remove(["LONG"])
    assert idx.counts()["summary_vectors"] == 0


def test_trial_index_study_without_text() -> None:
    idx = TrialIndex(HashingEncoder())
    idx.add([StudyEntry(id="EMPTY"), ENTRIES[3]])
    assert idx.counts() == {
        "studies": 2,
        "tci_vectors": 1,
        "conditions_vectors": 1,
        "interventions_vectors": 1,
        "summary_vectors": 0,
        "outcomes_vectors": 1,
    }
    for mode in SearchMode:
        assert idx.search("erectile function", k=5, mode=mode)[0].id == "NCT00668018"
    assert idx.similar("EMPTY", k=5) == []
    assert idx.remove(["EMPTY"]) == 1 and idx.ids() == ["NCT00668018"]


def test_trial_index_replace_keeps_one_copy(index: TrialIndex) -> None:
    new = copy.deepcopy(ENTRIES[2])
    new.title = "Apalutamide Versus Placebo in Metastatic Prostate Cancer"
    new.interventions = ["Apalutamide"]
    new.summary = "Apalutamide or placebo for men with metastatic prostate cancer."
    new.outcomes = new.outcomes[:1]
    assert [h.id for h in index.search("Darolutamide", k=10, mode=SearchMode.LEXICAL)] == [new.id]
    index.add([new])
    assert len(index) == 5 and index.get(new.id) == new
    assert index.counts() == {**COUNTS, "interventions_vectors": 6, "outcomes_vectors": 8}
    assert index.ids() == [*IDS[:2], *IDS[3:], IDS[2]]  # a replaced study is added anew
    for mode in SearchMode:
        hits = index.search("Darolutamide", k=10, mode=mode)
        assert [h.id for h in hits].count(new.id) <= 1
    assert [h.id for h in index.search("Darolutamide", k=10, mode=SearchMode.LEXICAL)] == []
    assert [h.id for h in index.search("Apalutamide", k=1, mode=SearchMode.LEXICAL)] == [new.id]
    hits = index.search_outcomes("Overall Survival", k=20, mode=SearchMode.DENSE)
    assert (new.id, 1) not in {(h.id, h.outcome) for h in hits}


def test_trial_index_repeated_id_in_one_add_last_wins(hashing: HashingEncoder) -> None:
    first, second = copy.deepcopy(ENTRIES[0]), copy.deepcopy(ENTRIES[0])
    second.title = "Second copy"
    idx = TrialIndex(hashing)
    idx.add([first, ENTRIES[1], second])
    assert idx.ids() == [ENTRIES[1].id, first.id] and idx.get(first.id).title == "Second copy"
    assert idx.counts()["tci_vectors"] == 2 and idx.counts()["outcomes_vectors"] == 4


def test_trial_index_removed_studies_never_come_back(index: TrialIndex, tmp_path: Path) -> None:
    gone = ENTRIES[0]
    queries = [gone.title, gone.summary, gone.outcomes[0].text, "acute myeloid leukemia CAR-T"]
    for mode in SearchMode:  # found before (and the lexical indexes built, so removing must update them)
        assert all(gone.id in {h.id for h in index.search(q, k=10, mode=mode)} for q in queries)
        assert all(gone.id in {h.id for h in index.search_outcomes(q, k=20, mode=mode)} for q in queries[2:3])
    assert index.remove([gone.id, "NCT99999999"]) == 1
    assert index.remove([gone.id]) == 0
    assert index.counts() == {
        "studies": 4,
        "tci_vectors": 4,
        "conditions_vectors": 4,
        "interventions_vectors": 6,
        "summary_vectors": 3,
        "outcomes_vectors": 7,
    }
    index.save(tmp_path)
    for idx in (index, TrialIndex.load(tmp_path, index.encoder)):
        for mode in SearchMode:
            for q in queries:
                assert gone.id not in {h.id for h in idx.search(q, k=10, mode=mode)}
                assert gone.id not in {h.id for h in idx.search_outcomes(q, k=20, mode=mode)}
        for other in idx.ids():
            assert gone.id not in {h.id for h in idx.similar(other, k=10)}
        assert gone.id not in idx and idx.ids() == IDS[1:]
        with pytest.raises(KeyError):
            idx.similar(gone.id)


def test_trial_index_remove_everything(index: TrialIndex) -> None:
    assert index.remove(IDS) == 5
    assert index.counts() == {name: 0 for name in COUNTS}
    for mode in SearchMode:
        assert index.search("overall survival", mode=mode) == []
        assert index.search_outcomes("overall survival", mode=mode) == []


# -- search: known answers --------------------------------------------------------------------------


def test_trial_index_dense_exact_text_scores_one(index: TrialIndex) -> None:
    entry = ENTRIES[0]
    for query, field, text in [
        (entry.outcomes[0].text, "outcomes[0]", entry.outcomes[0].text),
        (entry.field_text("tci"), "tci", entry.field_text("tci")),
        (entry.summary, "summary[0]", entry.summary),
    ]:
        hit = index.search(query, k=3, mode=SearchMode.DENSE)[0]
        assert (hit.id, hit.score) == (entry.id, 1.0)
        assert hit.reasons == {"dense": 1.0, "matched_field": field, "matched_text": text}
        assert (hit.title, hit.phases, hit.conditions) == (entry.title, entry.phases, entry.conditions)


def test_trial_index_dense_scores_are_cosines(index: TrialIndex, hashing: HashingEncoder) -> None:
    query = "relapsed leukemia"
    hits = index.search(query, k=5, mode=SearchMode.DENSE)
    q = encode(hashing, [query])[0]
    for hit in hits:
        entry = index.get(hit.id)
        rows = [
            entry.field_text("tci"),
            *([entry.summary] if entry.summary else []),
            *(o.text for o in entry.outcomes),
        ]
        assert hit.score == pytest.approx(float(np.max(encode(hashing, rows) @ q)), abs=1e-6)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_trial_index_lexical_reasons_and_scores(index: TrialIndex) -> None:
    hits = index.search("erectile", k=5, mode=SearchMode.LEXICAL)
    assert [h.id for h in hits] == ["NCT00668018"]
    assert set(hits[0].reasons) == {"lexical"} and hits[0].score == hits[0].reasons["lexical"] > 0


def test_trial_index_hybrid_is_rrf_of_dense_and_lexical(index: TrialIndex) -> None:
    # Queries that name no endpoint of the vocabulary: hybrid is then exactly RRF of the two rankings.
    for query in ["acute myeloid leukemia", "darolutamide prostate", "colorectal liver metastases"]:
        dense = [h.id for h in index.search(query, k=FUSION_DEPTH, mode=SearchMode.DENSE)]
        lexical = [h.id for h in index.search(query, k=FUSION_DEPTH, mode=SearchMode.LEXICAL)]
        expected = [(key, round(score, 6)) for key, score in reciprocal_rank_fusion([dense, lexical])]
        hybrid = index.search(query, k=10)
        assert [(h.id, h.score) for h in hybrid] == expected
        assert all(h.reasons["dense"] is not None for h in hybrid)


def test_trial_index_hybrid_ranks_studies_measuring_the_named_endpoint_first(index: TrialIndex) -> None:
    concept = index._concept(index.embed_query("overall survival"))
    assert concept is not None and concept.id == "overall_survival"
    carriers = {e.id for e in ENTRIES if "overall_survival" in e.endpoints}
    assert carriers and len(carriers) < len(ENTRIES)
    hits = index.search("overall survival", k=len(ENTRIES))
    first = [h for h in hits if h.score > 1.0]
    assert {h.id for h in first} == carriers and hits[: len(first)] == first
    assert all(h.reasons["endpoint"]["id"] == "overall_survival" for h in first)
    assert all("endpoint" not in h.reasons for h in hits[len(first) :])
    outcome_hits = index.search_outcomes("overall survival", k=3)
    assert all("overall_survival" in h.endpoints for h in outcome_hits if h.score > 1.0)
    # Dense and lexical modes never reorder by endpoint.
    assert all(h.score <= 1.0 + 1e-6 for h in index.search("overall survival", k=5, mode=SearchMode.DENSE))


def test_trial_index_hybrid_top_in_both_scores_two_over_61(index: TrialIndex) -> None:
    [hit] = index.search("Vardenafil Erectile Dysfunction", k=1)
    assert (hit.id, hit.score) == ("NCT00668018", round(2 / 61, 6))
    assert set(hit.reasons) == {"dense", "matched_field", "matched_text", "lexical"}


def test_trial_index_search_outcomes_known_answer(index: TrialIndex) -> None:
    hits = index.search_outcomes("Dose-limiting toxicity (DLT)", k=2, mode=SearchMode.DENSE)
    assert hits[0] == OutcomeHit(
        id="NCT03672851",
        outcome=0,
        score=1.0,
        role="primary",
        measure="Dose-limiting toxicity (DLT)",
        endpoints=["dlt"],
        category="safety",
        horizon_days=28,
        reasons={"dense": 1.0},
    )
    assert len(hits) == 2 and hits[1].score < 1.0
    lexical = index.search_outcomes("overall survival", k=5, mode=SearchMode.LEXICAL)
    assert {(h.id, h.outcome) for h in lexical} == {
        ("NCT06177015", 1),
        ("NCT04904237", 1),
        ("NCT06177015", 0),
        ("NCT04904237", 0),
    }
    assert {(h.id, h.outcome) for h in lexical[:2]} == {("NCT06177015", 1), ("NCT04904237", 1)}


@pytest.mark.parametrize("mode", list(SearchMode))
def test_trial_index_k_must_be_positive(index: TrialIndex, mode: SearchMode) -> None:
    for call in (index.search, index.search_outcomes):
        with pytest.raises(ValueError) as err:
            call("x", k=0, mode=mode)
        assert str(err.value) == "k must be at least 1, got 0"


# -- filters ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", list(SearchMode))
@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"phases": ["3"]}, {"NCT06177015", "NCT00668018"}),
        ({"condition": "myeloid"}, {"NCT03672851", "NCT04904237"}),
        ({"endpoints": ["overall_survival"]}, {"NCT06177015", "NCT04904237"}),
        ({"horizon": "60..120"}, {"NCT03672851", "NCT06834399", "NCT00668018"}),
        # The ORR of NCT06834399 is at 2 years; its 3-month outcome is adverse events: no match.
        ({"endpoints": ["objective_response_rate"], "horizon": "60..120"}, set()),
        ({"endpoints": ["adverse_events"], "horizon": "60..120"}, {"NCT06834399"}),
        ({"phases": ["1"], "categories": ["efficacy"], "roles": ["secondary"]}, {"NCT03672851"}),
    ],
)
def test_trial_index_search_filters(
    index: TrialIndex, mode: SearchMode, kwargs: dict[str, object], expected: set[str]
) -> None:
    filters = SearchFilters.make(**kwargs)  # type: ignore[arg-type]
    # A query every study shares words with, so lexical search scores them all.
    query = "cancer leukemia dysfunction survival response events function toxicity"
    hits = index.search(query, k=10, mode=mode, filters=filters)
    assert {h.id for h in hits} <= expected
    if mode is SearchMode.DENSE:
        assert {h.id for h in hits} == expected
    assert all(filters.trial_matches(index.get(h.id)) for h in hits)


@pytest.mark.parametrize("mode", list(SearchMode))
def test_trial_index_search_outcomes_filters(index: TrialIndex, mode: SearchMode) -> None:
    filters = SearchFilters.make(horizon="60..120")
    hits = index.search_outcomes(
        "response adverse events erectile function", k=10, mode=mode, filters=filters
    )
    found = {(h.id, h.outcome) for h in hits}
    assert found <= {("NCT03672851", 1), ("NCT06834399", 1), ("NCT00668018", 0)}
    if mode is SearchMode.DENSE:
        assert len(found) == 3
    for h in hits:
        assert filters.outcome_matches(index.get(h.id).outcomes[h.outcome])
    study_level = SearchFilters.make(phases=["3"], roles=["primary"])
    hits = index.search_outcomes("survival function", k=10, mode=mode, filters=study_level)
    assert {(h.id, h.outcome) for h in hits} <= {("NCT06177015", 0), ("NCT00668018", 0)}
    assert (
        index.search_outcomes("survival", k=10, mode=mode, filters=SearchFilters.make(categories=["pk"]))
        == []
    )


def _haystack() -> list[StudyEntry]:
    """50 studies that match the query well, and 10 that match it least but pass the filter."""
    decoys = [
        StudyEntry(
            id=f"D{i:02d}",
            title=f"Objective response rate of tumour by RECIST in solid tumours, cohort {i}",
            phases=["PHASE2"],
            outcomes=[
                outcome(
                    f"Objective response rate by RECIST, cohort {i}",
                    endpoints=["objective_response_rate"],
                    category="efficacy",
                )
            ],
        )
        for i in range(50)
    ]
    targets = [
        StudyEntry(
            id=f"T{i:02d}",
            title=f"Heart rate variability in healthy volunteers, cohort {i}",
            phases=["PHASE1"],
            outcomes=[outcome(f"Resting heart rate, cohort {i}", endpoints=["heart_rate"], category="pd")],
        )
        for i in range(10)
    ]
    return decoys + targets


QUERY = "objective response rate of tumour by RECIST"


@pytest.mark.parametrize("mode", list(SearchMode))
def test_trial_index_filter_before_top_k(hashing: HashingEncoder, mode: SearchMode) -> None:
    idx = TrialIndex(hashing)
    idx.add(_haystack())
    assert all(h.id.startswith("D") for h in idx.search(QUERY, k=10, mode=mode))
    hits = idx.search(QUERY, k=5, mode=mode, filters=SearchFilters.make(phases=["1"]))
    assert len(hits) == 5 and all(h.id.startswith("T") for h in hits)
    outcomes = idx.search_outcomes(
        QUERY, k=5, mode=mode, filters=SearchFilters.make(endpoints=["heart_rate"])
    )
    assert len(outcomes) == 5 and all(
        h.id.startswith("T") and h.endpoints == ["heart_rate"] for h in outcomes
    )


@pytest.fixture(scope="module")
def ivf_index() -> TrialIndex:
    entries = _haystack()
    for i, entry in enumerate(entries):
        entry.outcomes = [
            outcome(
                f"{entry.outcomes[0].measure}, visit {j} of study {i}", endpoints=entry.outcomes[0].endpoints
            )
            for j in range(20)
        ]
    idx = TrialIndex(HashingEncoder())
    idx.add(entries)
    idx.optimise(IndexKind.IVF)
    # 1,200 outcome rows are enough to train on; the 60-row stores stay exact.
    assert {name: store.kind for name, store in idx.stores.items()} == {
        "tci": IndexKind.EXACT,
        "conditions": IndexKind.EXACT,
        "interventions": IndexKind.EXACT,
        "summary": IndexKind.EXACT,
        "outcomes": IndexKind.IVF,
    }
    assert idx.kind is IndexKind.IVF and idx.counts()["outcomes_vectors"] == 1200
    return idx


def test_trial_index_optimise_auto_keeps_small_stores_exact(index: TrialIndex) -> None:
    before = all_results(index)
    stores = dict(index.stores)
    index.optimise()
    assert index.stores == stores  # nothing rebuilt below the IVF threshold
    index.optimise(IndexKind.IVF)  # too small to train: still exact
    assert all(store.kind is IndexKind.EXACT for store in index.stores.values())
    assert all_results(index) == before


def test_trial_index_optimise_back_to_exact(ivf_index: TrialIndex) -> None:
    idx = copy.copy(ivf_index)
    idx.stores = dict(ivf_index.stores)
    idx.optimise(IndexKind.EXACT)
    assert idx.stores["outcomes"].kind is IndexKind.EXACT and idx.counts() == ivf_index.counts()
    np.testing.assert_array_equal(
        np.sort(idx.stores["outcomes"].ids()), np.sort(ivf_index.stores["outcomes"].ids())
    )


@pytest.mark.parametrize("brute_force_limit", [20_000, 0], ids=["brute-force", "faiss-selector"])
def test_trial_index_ivf_outcomes_filter_before_top_k(
    ivf_index: TrialIndex, brute_force_limit: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    import index.store as store_module

    monkeypatch.setattr(store_module, "BRUTE_FORCE_LIMIT", brute_force_limit)
    assert (
        ivf_index.stores["outcomes"].kind is IndexKind.IVF and ivf_index.counts()["outcomes_vectors"] == 1200
    )
    filters = SearchFilters.make(endpoints=["heart_rate"])
    for mode in SearchMode:
        hits = ivf_index.search_outcomes(QUERY, k=5, mode=mode, filters=filters)
        assert len(hits) == 5 and all(h.endpoints == ["heart_rate"] for h in hits)


def test_trial_index_ivf_save_load(ivf_index: TrialIndex, tmp_path: Path) -> None:
    ivf_index.save(tmp_path)
    meta = json.loads((tmp_path / META).read_text())
    params = meta["build"]["stores"]["outcomes"]
    assert params["kind"] == "ivf" and params["vectors"] == 1200 and params["recall_at_10"] >= 0.95
    loaded = TrialIndex.load(tmp_path, HashingEncoder())
    assert loaded.stores["outcomes"].kind is IndexKind.IVF
    assert loaded.stores["outcomes"].params() == ivf_index.stores["outcomes"].params()
    for q in [QUERY, "resting heart rate visit 3"]:
        for mode in SearchMode:
            a = ivf_index.search_outcomes(q, k=10, mode=mode)
            b = loaded.search_outcomes(q, k=10, mode=mode)
            assert [(h.id, h.outcome, h.score) for h in a] == [(h.id, h.outcome, h.score) for h in b]


# -- save and load ---------------------------------------------------------------------------------------


def test_trial_index_save_load_identical_results(index: TrialIndex, tmp_path: Path) -> None:
    assert index.save(tmp_path / "idx") == 1
    loaded = TrialIndex.load(tmp_path / "idx", HashingEncoder())
    assert loaded.counts() == index.counts() == COUNTS
    assert loaded.ids() == index.ids()
    assert [loaded.get(i) for i in IDS] == ENTRIES
    assert all_results(loaded) == all_results(index)
    for study_id in IDS:
        a, b = index.study_vectors(study_id), loaded.study_vectors(study_id)
        assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_trial_index_meta_json(index: TrialIndex, tmp_path: Path) -> None:
    index.save(tmp_path, extra_meta={"source": "unit test"})
    meta = json.loads((tmp_path / META).read_text())
    assert meta["model"] == {
        "id": "trialsift/hashing-v1",
        "fingerprint": "hashing-v1:d=64:w=64",
        "dimension": 64,
    }
    assert (meta["metric"], meta["normalized"], meta["counts"]) == ("inner_product", True, COUNTS)
    assert meta["ids"] == {"next_study_no": 5, "slot_bits": 16}
    assert meta["build"]["kind"] == "auto"
    assert meta["build"]["stores"] == {
        name: {"kind": "exact", "vectors": COUNTS[f"{name}_vectors"]} for name in STORES
    }
    assert meta["build"]["fusion"] == {
        "method": "rrf",
        "k": 60,
        "depth": FUSION_DEPTH,
        "endpoint_first": {"vocabulary": "nlp/resources/endpoints.tsv", "threshold": 0.6},
    }
    assert meta["build"]["lexical"]["library"] == "bm25s"
    assert (meta["format"], meta["version"], meta["generation"], meta["source"]) == (
        "trialsift-index",
        2,
        1,
        "unit test",
    )
    assert sorted(meta["files"]) == [
        "store.conditions",
        "store.interventions",
        "store.outcomes",
        "store.summary",
        "store.tci",
        "studies",
    ]
    assert meta["saved_at"].endswith("Z")


def test_trial_index_empty_save_load(hashing: HashingEncoder, tmp_path: Path) -> None:
    TrialIndex(hashing, IndexKind.EXACT).save(tmp_path)
    loaded = TrialIndex.load(tmp_path, hashing)
    assert len(loaded) == 0 and loaded.kind is IndexKind.EXACT
    for mode in SearchMode:
        assert loaded.search("anything", mode=mode) == []


def test_trial_index_resume_add_after_load(index: TrialIndex, tmp_path: Path) -> None:
    first, rest = ENTRIES[:3], ENTRIES[3:]
    idx = TrialIndex(HashingEncoder())
    idx.add(first)
    idx.save(tmp_path)
    resumed = TrialIndex.load(tmp_path, HashingEncoder())
    resumed.add(rest)
    assert resumed.save(tmp_path) == 2
    final = TrialIndex.load(tmp_path, HashingEncoder())
    assert final.ids() == IDS and final.counts() == COUNTS
    assert all_results(final) == all_results(index)  # same as indexing everything at once
    # Numbers keep counting after a reload: a replacement does not clash with existing rows.
    final.add([copy.deepcopy(ENTRIES[0])])
    assert final.ids() == [*IDS[1:], IDS[0]] and final.counts() == COUNTS


@pytest.mark.parametrize(
    ("encoder", "message"),
    [
        (
            HashingEncoder(dimension=32),
            "built with 64-dimensional vectors, the encoder gives 32; rebuild the index with this encoder",
        ),
        (
            HashingEncoder(window_words=32),
            "built with model trialsift/hashing-v1 (hashing-v1:d=64:w=64), but the encoder is "
            "trialsift/hashing-v1 (hashing-v1:d=64:w=32); rebuild the index with this encoder",
        ),
    ],
)
def test_trial_index_load_refuses_another_model(
    index: TrialIndex, tmp_path: Path, encoder: HashingEncoder, message: str
) -> None:
    index.save(tmp_path)
    with pytest.raises(IndexFileError) as err:
        TrialIndex.load(tmp_path, encoder)
    assert str(err.value) == f"{tmp_path}: {message}"


def test_trial_index_load_refuses_another_model_id(index: TrialIndex, tmp_path: Path) -> None:
    class Other(HashingEncoder):
        @property
        def model_id(self) -> str:
            return "someone/else"

    index.save(tmp_path)
    with pytest.raises(IndexFileError) as err:
        TrialIndex.load(tmp_path, Other())
    assert str(err.value) == (
        f"{tmp_path}: built with model trialsift/hashing-v1 (hashing-v1:d=64:w=64), but the encoder is "
        "someone/else (hashing-v1:d=64:w=64); rebuild the index with this encoder"
    )


@pytest.mark.parametrize("name", ["vectors.outcomes.1.faiss", "studies.1.jsonl.gz"])
def test_trial_index_load_refuses_damaged_file(index: TrialIndex, tmp_path: Path, name: str) -> None:
    index.save(tmp_path)
    path = tmp_path / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(IndexFileError) as err:
        TrialIndex.load(tmp_path, HashingEncoder())
    assert str(err.value) == f"{path}: contents do not match meta.json (damaged file); rebuild the index"


def test_trial_index_load_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(IndexFileError) as err:
        TrialIndex.load(tmp_path / "missing", HashingEncoder())
    assert "missing: no such index directory (build one with `trialsift index build`)" in str(err.value)


def test_trial_index_load_refuses_counts_that_disagree(index: TrialIndex, tmp_path: Path) -> None:
    index.save(tmp_path)
    meta = json.loads((tmp_path / META).read_text())
    meta["counts"]["outcomes_vectors"] = 10
    (tmp_path / META).write_text(json.dumps(meta))
    with pytest.raises(IndexFileError, match=r"disagree with meta.json .*'outcomes_vectors': 10"):
        TrialIndex.load(tmp_path, HashingEncoder())


# -- crashes during save ----------------------------------------------------------------------------------


@pytest.mark.parametrize("crash_at", range(7))  # six data files, then meta.json
def test_trial_index_save_interrupted_at_any_write(
    index: TrialIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, crash_at: int
) -> None:
    small = TrialIndex(HashingEncoder())
    small.add(ENTRIES[:2])
    small.save(tmp_path)
    real_write = files._write_durably
    writes: list[str] = []

    def crash(path: Path, data: bytes) -> None:
        writes.append(path.name)
        if len(writes) > crash_at:
            raise OSError("disk on fire")
        real_write(path, data)

    monkeypatch.setattr(files, "_write_durably", crash)
    with pytest.raises(OSError, match="disk on fire"):
        index.save(tmp_path)
    assert len(writes) == crash_at + 1 and (writes[-1] == META) is (crash_at == 6)
    old = TrialIndex.load(tmp_path, HashingEncoder())
    assert old.ids() == IDS[:2] and old.counts()["studies"] == 2
    monkeypatch.setattr(files, "_write_durably", real_write)
    # A failed generation that left files behind is stepped over, and its files removed.
    gen = index.save(tmp_path)
    assert gen == (2 if crash_at == 0 else 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [".lock", META, f"studies.{gen}.jsonl.gz", *(f"vectors.{name}.{gen}.faiss" for name in STORES)]
    )
    assert TrialIndex.load(tmp_path, HashingEncoder()).counts() == COUNTS


SAVER = r"""
import sys
from index.documents import StudyEntry
from index.encoder import HashingEncoder
from index.trial_index import TrialIndex

path = sys.argv[1]
idx = TrialIndex.load(path, HashingEncoder())
start = len(idx)
print("ready", flush=True)
for i in range(start, start + 5000):
    entry = StudyEntry(
        id=f"NEW-{i}", title=f"Added study marker{i}", conditions=["Leukemia"], summary="w " * 150
    )
    idx.add([entry])
    idx.save(path)
"""


def test_trial_index_save_killed_midway_leaves_a_loadable_index(index: TrialIndex, tmp_path: Path) -> None:
    index.save(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    expected_ids = list(IDS)
    for delay in (0.0, 0.03, 0.08, 0.15, 0.3):
        proc = subprocess.Popen(
            [sys.executable, "-c", SAVER, str(tmp_path)], stdout=subprocess.PIPE, cwd=ROOT, env=env
        )
        try:
            assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
            time.sleep(delay)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        assert proc.returncode == -signal.SIGKILL
        loaded = TrialIndex.load(tmp_path, HashingEncoder())
        ids = loaded.ids()
        # One of the generations: the ids so far, then NEW-5, NEW-6, ... in order, nothing half-added.
        added = len(ids) - len(expected_ids)
        assert added >= 0
        assert ids == expected_ids + [f"NEW-{len(expected_ids) + i}" for i in range(added)]
        expected_ids = ids
        n_new = len(ids) - 5
        assert loaded.counts() == {
            **COUNTS,
            "studies": 5 + n_new,
            "tci_vectors": 5 + n_new,
            "conditions_vectors": 6 + n_new,
            "summary_vectors": 4 + 3 * n_new,  # 150 words: three 64-word windows
        }
        if n_new:
            last = f"Added study marker{len(ids) - 1}"
            assert loaded.search(last, k=1, mode=SearchMode.LEXICAL)[0].id == ids[-1]
    assert len(expected_ids) > 5  # some saves did complete


@pytest.mark.slow
def test_trial_index_real_model_save_load_identical(real_encoder: Any, tmp_path: Path) -> None:
    idx = TrialIndex(real_encoder)
    idx.add(copy.deepcopy(ENTRIES))
    idx.save(tmp_path)
    loaded = TrialIndex.load(tmp_path, real_encoder)
    assert all_results(loaded) == all_results(idx)
    hits = loaded.search("acute myeloid leukaemia", k=2, mode=SearchMode.DENSE)
    assert {h.id for h in hits} == {"NCT03672851", "NCT04904237"}
    assert (
        loaded.similar("NCT06177015", k=1)[0].id != "NCT00668018"
    )  # prostate cancer is not erectile dysfunction
