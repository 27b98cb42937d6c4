"""Fixtures for the index tests: the deterministic test encoder, hand-made study entries, the real model."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from index.documents import OutcomeEntry, StudyEntry
from index.encoder import HashingEncoder, SentenceTransformerEncoder
from index.trial_index import SearchMode, TrialIndex


def outcome(
    measure: str,
    *,
    role: str = "primary",
    description: str = "",
    endpoints: Sequence[str] = (),
    category: str = "other",
    horizon: float | None = None,
    points: Sequence[float] = (),
    criteria: Sequence[str] = (),
) -> OutcomeEntry:
    """An outcome entry with its extracted facts given by keyword."""
    return OutcomeEntry(
        role=role,
        measure=measure,
        description=description,
        endpoints=list(endpoints),
        category=category,
        horizon_days=horizon,
        points_days=list(points),
        criteria=list(criteria),
    )


# Real registry wording (titles, conditions, outcome measures taken from the corpus), shortened.
ENTRIES: list[StudyEntry] = [
    StudyEntry(
        id="NCT03672851",
        title="Anti-CD123 CAR-T Cell Therapy for Relapsed or Refractory Acute Myeloid Leukemia",
        conditions=["Acute Myeloid Leukemia", "Acute Leukemia in Relapse"],
        keywords=["CAR-T"],
        interventions=["anti-CD123 CAR-T treatment"],
        summary="A phase 1 study of anti-CD123 CAR-T cells in patients with relapsed acute myeloid leukemia.",
        phases=["PHASE1"],
        escalation="3+3",
        criteria=["CTCAE 5.0"],
        outcomes=[
            outcome(
                "Dose-limiting toxicity (DLT)", endpoints=["dlt"], category="safety", horizon=28, points=[28]
            ),
            outcome(
                "Disease response (CR or CRi)",
                role="secondary",
                endpoints=["complete_response"],
                category="efficacy",
                horizon=90,
                points=[90],
            ),
        ],
    ),
    StudyEntry(
        id="NCT06834399",
        title="KN046 Combined With TATE for Colorectal Cancer With Hepatic Metastases",
        conditions=["Colorectal Cancer with Hepatic Metastases"],
        interventions=["KN046", "Tirapazamine"],
        summary="Patients with colorectal liver metastases receive KN046 with transarterial embolization.",
        phases=["PHASE2"],
        criteria=["RECIST 1.1"],
        outcomes=[
            outcome(
                "Objective response rate (ORR)",
                description="Complete or partial response by RECIST 1.1",
                endpoints=["objective_response_rate"],
                category="efficacy",
                horizon=730,
                points=[730],
                criteria=["RECIST 1.1"],
            ),
            outcome(
                "Incidence of adverse events",
                role="secondary",
                endpoints=["adverse_events"],
                category="safety",
                horizon=90,
                points=[90],
            ),
        ],
    ),
    StudyEntry(
        id="NCT06177015",
        title="Intermittent Versus Continuous Darolutamide in Metastatic Prostate Cancer",
        conditions=["Metastatic Prostate Cancer"],
        interventions=["Darolutamide continuous", "Darolutamide intermittent"],
        summary="Darolutamide given continuously or intermittently to men with metastatic prostate cancer.",
        phases=["PHASE3"],
        outcomes=[
            outcome(
                "Radiographic Progression Free Survival",
                endpoints=["progression_free_survival"],
                category="efficacy",
                horizon=1825,
            ),
            outcome(
                "Overall Survival", role="secondary", endpoints=["overall_survival"], category="efficacy"
            ),
        ],
    ),
    StudyEntry(
        id="NCT00668018",
        title="Vardenafil in Men With Erectile Dysfunction",
        conditions=["Erectile Dysfunction"],
        interventions=["Levitra (Vardenafil, BAY38-9456)"],
        phases=["PHASE3"],
        outcomes=[
            outcome("International Index of Erectile Function", category="efficacy", horizon=84, points=[84]),
        ],
    ),
    StudyEntry(
        id="NCT04904237",
        title="Azacitidine and Venetoclax Before Allogeneic Transplant in Refractory Acute Myeloid Leukemia",
        conditions=["Refractory Acute Myeloid Leukemia"],
        interventions=["Aza-Ven-allo-HSCT"],
        summary="Azacitidine plus venetoclax bridging to allogeneic stem cell transplantation.",
        phases=["PHASE2"],
        outcomes=[
            outcome(
                "relapse-free survival", endpoints=["relapse_free_survival"], category="efficacy", horizon=365
            ),
            outcome(
                "overall survival", role="secondary", endpoints=["overall_survival"], category="efficacy"
            ),
        ],
    ),
]


@pytest.fixture(scope="session", autouse=True)
def single_faiss_thread() -> None:
    """One FAISS thread: on this shared 2-core machine OpenMP's workers spin against other processes, and a
    search of a ten-row index takes ~11 ms with two threads against ~0.5 ms with one (measured)."""
    import faiss

    faiss.omp_set_num_threads(1)


@pytest.fixture
def entries() -> list[StudyEntry]:
    """Fresh copies of :data:`ENTRIES` (tests may change them)."""
    return copy.deepcopy(ENTRIES)


@pytest.fixture
def hashing() -> HashingEncoder:
    return HashingEncoder()


@pytest.fixture
def index(entries: list[StudyEntry], hashing: HashingEncoder) -> TrialIndex:
    """A small index of :data:`ENTRIES` with the hashing encoder."""
    idx = TrialIndex(hashing)
    idx.add(entries)
    return idx


@pytest.fixture(scope="session")
def real_encoder() -> SentenceTransformerEncoder:
    """The packaged all-MiniLM-L6-v2, loaded once per test session (the process-wide singleton)."""
    from index.encoder import default_encoder

    single_torch_thread()
    return default_encoder()


def single_torch_thread() -> None:
    """One torch thread: on this shared 2-core machine, torch's OpenMP workers spin against other processes
    and a three-text batch takes ~1.5 s with two threads against ~0.05 s with one (measured)."""
    import torch

    torch.set_num_threads(1)


QUERIES = [
    "acute myeloid leukemia CAR-T",
    "objective response rate RECIST",
    "overall survival",
    "erectile function",
    "prostate cancer darolutamide",
]


def all_results(idx: TrialIndex, queries: Sequence[str] = QUERIES, k: int = 10) -> dict[str, Any]:
    """Every kind of result the index gives, as plain data, for comparing two indexes."""
    out: dict[str, Any] = {}
    for mode in SearchMode:
        for q in queries:
            out[f"trials/{mode}/{q}"] = [(h.id, h.score, h.reasons) for h in idx.search(q, k=k, mode=mode)]
            out[f"outcomes/{mode}/{q}"] = [
                (h.id, h.outcome, h.score, h.reasons) for h in idx.search_outcomes(q, k=k, mode=mode)
            ]
    for study_id in idx.ids():
        out[f"similar/{study_id}"] = [(h.id, h.score, h.reasons) for h in idx.similar(study_id, k=k)]
    return out


def unit(*values: float) -> np.ndarray:
    """A float32 row vector scaled to unit length."""
    v = np.asarray(values, dtype=np.float32)
    return v / np.linalg.norm(v)
