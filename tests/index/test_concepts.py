"""index.concepts: matching free-text queries to the endpoint vocabulary (real packaged model)."""

from __future__ import annotations

import pytest

from index.concepts import CONCEPT_THRESHOLD, EndpointConcepts, concept_texts
from index.encoder import SentenceTransformerEncoder, encode


@pytest.fixture(scope="module")
def concepts(real_encoder: SentenceTransformerEncoder) -> EndpointConcepts:
    return EndpointConcepts(real_encoder)


def test_concepts_texts_cover_the_vocabulary() -> None:
    ids, labels, definitions = concept_texts()
    assert len(ids) == len(labels) == len(definitions) == 44
    i = ids.index("objective_response_rate")
    assert labels[i] == "objective response rate (ORR)"
    assert definitions[i].startswith("proportion")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("objective response rate", "objective_response_rate"),
        ("overall survival", "overall_survival"),
        ("time to disease progression or death; PFS rate at a time point", "progression_free_survival"),
        ("maximum plasma concentration", "cmax"),
        ("dose-limiting toxicities", "dose_limiting_toxicity"),
        # Not endpoint queries: conditions, drugs, designs.
        ("metformin in type 2 diabetes", None),
        ("Acute Myeloid Leukemia", None),
        ("pembrolizumab", None),
    ],
)
def test_concepts_match_known_queries(
    concepts: EndpointConcepts, real_encoder: SentenceTransformerEncoder, query: str, expected: str | None
) -> None:
    match = concepts.match(encode(real_encoder, [query])[0])
    assert (match.id if match else None) == expected
    if match:
        assert CONCEPT_THRESHOLD <= match.score <= 1.0 + 1e-6
