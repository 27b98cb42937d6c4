"""Query understanding: which endpoint of trialsift's vocabulary a free-text query asks about.

Every outcome in the index carries the endpoint ids the extractor found in it. A query that names an endpoint
("objective response rate", "time to disease progression or death") is matched to the vocabulary
(``nlp/resources/endpoints.tsv``: id, abbreviation, definition) by embedding similarity, and hybrid search
then ranks the outcomes (or trials) that carry that endpoint first. This is what lets a query phrased as a
definition find outcomes worded nothing like it ("PFS per RECIST 1.1").

The threshold separates endpoint queries from others: on the vocabulary itself, every label scores at least
0.616 against its own entry and every definition about 1.0, while study titles and condition names score
at most 0.52 against any entry (measured on 300 sample studies).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from index.encoder import Encoder, Vectors, encode

#: Minimum cosine similarity between a query and an entry's label or definition to count as a match.
CONCEPT_THRESHOLD: Final = 0.6


@dataclass(frozen=True, slots=True)
class ConceptMatch:
    """The endpoint a query asks about, and how close the query is to its label or definition."""

    id: str
    score: float


def concept_texts() -> tuple[list[str], list[str], list[str]]:
    """Endpoint ids, their labels (``"objective response rate (ORR)"``) and their definitions."""
    from nlp.endpoints import vocabulary

    vocab = vocabulary()
    ids = list(vocab)
    labels = [
        i.replace("_", " ") + (f" ({vocab[i].abbreviation})" if vocab[i].abbreviation else "") for i in ids
    ]
    return ids, labels, [vocab[i].definition or labels[n] for n, i in enumerate(ids)]


class EndpointConcepts:
    """The endpoint vocabulary, embedded once per encoder."""

    def __init__(self, encoder: Encoder, threshold: float = CONCEPT_THRESHOLD) -> None:
        self.encoder = encoder
        self.threshold = threshold
        self.ids, labels, definitions = concept_texts()
        vecs = encode(encoder, labels + definitions)
        n = len(self.ids)
        self._labels: Vectors = vecs[:n]
        self._definitions: Vectors = vecs[n:]

    def match(self, query_vector: Vectors) -> ConceptMatch | None:
        """The best-matching endpoint for a normalised query vector, or ``None`` below the threshold."""
        q = np.asarray(query_vector, dtype=np.float32).reshape(-1)
        sims = np.maximum(self._labels @ q, self._definitions @ q)
        best = int(np.argmax(sims))
        if sims[best] < self.threshold:
            return None
        return ConceptMatch(self.ids[best], round(float(sims[best]), 6))
