"""index.encoder: window splitting, the hashing encoder, encode's dedup and window means, the real model."""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from index.encoder import (
    DEFAULT_MODEL_ID,
    Chunked,
    Encoder,
    HashingEncoder,
    SentenceTransformerEncoder,
    Vectors,
    encode,
    encode_chunks,
    normalise,
    split_token_windows,
)

# -- split_token_windows -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "size", "stride", "expected"),
    [
        (10, 4, 3, [(0, 4), (3, 7), (6, 10)]),
        (4, 4, 2, [(0, 4)]),  # fits: one window, however small the stride
        (0, 4, 2, [(0, 0)]),  # an empty text is still one (empty) window
        (5, 4, 4, [(0, 4), (4, 5)]),  # no overlap
        (7, 4, 2, [(0, 4), (2, 6), (4, 7)]),
        (6, 4, 1, [(0, 4), (1, 5), (2, 6)]),
        (300, 254, 222, [(0, 254), (222, 300)]),  # the real model's window and stride
        (600, 254, 222, [(0, 254), (222, 476), (444, 600)]),
    ],
)
def test_split_token_windows_exact(n: int, size: int, stride: int, expected: list[tuple[int, int]]) -> None:
    assert split_token_windows(list(range(n)), size, stride) == expected


@pytest.mark.parametrize(("size", "stride"), [(0, 0), (4, 0), (4, 5), (-1, 1), (3, -2)])
def test_split_token_windows_refuses_bad_sizes(size: int, stride: int) -> None:
    with pytest.raises(ValueError) as err:
        split_token_windows([1, 2, 3], size, stride)
    assert str(err.value) == f"need 0 < stride <= size, got size={size} stride={stride}"


@given(n=st.integers(0, 400), size=st.integers(1, 60), data=st.data())
def test_split_token_windows_cover_every_token(n: int, size: int, data: st.DataObject) -> None:
    stride = data.draw(st.integers(1, size))
    windows = split_token_windows(range(n), size, stride)  # type: ignore[arg-type]
    assert windows[0][0] == 0 and windows[-1][1] == n
    assert all(0 < end - start <= size for start, end in windows) or n == 0
    assert all(b[0] - a[0] == stride for a, b in itertools.pairwise(windows))
    # Consecutive windows touch or overlap, so every token is in one; only the last reaches the end.
    assert all(b[0] <= a[1] for a, b in itertools.pairwise(windows))
    assert [end for _, end in windows].count(n) == 1


# -- HashingEncoder ------------------------------------------------------------------------------------


def test_hashing_encoder_identity() -> None:
    enc = HashingEncoder(dimension=32, window_words=16)
    assert (enc.model_id, enc.fingerprint, enc.dimension) == (
        "trialsift/hashing-v1",
        "hashing-v1:d=32:w=16",
        32,
    )
    assert isinstance(enc, Encoder)


@pytest.mark.parametrize(
    ("text", "windows"),
    [
        ("overall survival", ["overall survival"]),
        ("a b c", ["a b c"]),
        ("a b c d", ["a b c", "d"]),
        ("Time to progression (TTP), up to 2 years.", ["Time to progression", "TTP), up to", "2 years"]),
        ("  ", ["  "]),  # no words: kept whole, never dropped
    ],
)
def test_hashing_encoder_split_exact(text: str, windows: list[str]) -> None:
    chunked = HashingEncoder(window_words=3).split([text])
    assert chunked == Chunked(windows, [0] * len(windows))


def test_hashing_encoder_split_owner_of_each_window() -> None:
    chunked = HashingEncoder(window_words=2).split(["one two three", "four", "five six seven eight nine"])
    assert chunked.windows == ["one two", "three", "four", "five six", "seven eight", "nine"]
    assert chunked.owner == [0, 0, 1, 2, 2, 2]


def test_hashing_encoder_is_deterministic_across_instances() -> None:
    texts = ["Objective response rate (ORR)", "Incidence of adverse events", "Überleben ≤ 28 Tage"]
    a = HashingEncoder().encode_windows(texts)
    b = HashingEncoder().encode_windows(list(reversed(texts)))[::-1]
    assert a.dtype == np.float32 and a.shape == (3, 64)
    assert a.tobytes() == np.ascontiguousarray(b).tobytes()


def test_hashing_encoder_shared_words_score_higher() -> None:
    v = HashingEncoder().encode_windows(["overall survival", "overall survival at 2 years", "adverse events"])
    assert v[0] @ v[1] > v[0] @ v[2]
    assert float(v[0] @ v[0]) == pytest.approx(1.0, abs=1e-6)


def test_hashing_encoder_text_without_words_is_a_zero_row() -> None:
    v = HashingEncoder().encode_windows(["", "— : ;", "x"])
    assert v[0].tolist() == [0.0] * 64 and v[1].tolist() == [0.0] * 64
    assert float(np.linalg.norm(v[2])) == pytest.approx(1.0, abs=1e-6)


# -- normalise, encode, encode_chunks ------------------------------------------------------------------


def test_normalise_exact_and_zero_rows_stay_zero() -> None:
    out = normalise(np.array([[3.0, 4.0], [0.0, 0.0], [0.0, -2.0]]))
    assert out.dtype == np.float32 and out.flags.c_contiguous
    assert out.tolist() == [[0.6000000238418579, 0.800000011920929], [0.0, 0.0], [0.0, -1.0]]


class RecordingEncoder:
    """A HashingEncoder that records what it is asked to embed."""

    def __init__(self, window_words: int = 64) -> None:
        self.inner = HashingEncoder(window_words=window_words)
        self.split_calls: list[list[str]] = []
        self.window_calls: list[list[str]] = []
        self.model_id, self.fingerprint, self.dimension = "rec", "rec", self.inner.dimension

    def split(self, texts: Sequence[str]) -> Chunked:
        self.split_calls.append(list(texts))
        return self.inner.split(texts)

    def encode_windows(self, windows: Sequence[str]) -> Vectors:
        self.window_calls.append(list(windows))
        return self.inner.encode_windows(windows)


def test_encode_embeds_each_distinct_text_once() -> None:
    enc = RecordingEncoder()
    texts = ["Overall survival", "Adverse events", "Overall survival", "Overall survival", "Adverse events"]
    vecs = encode(enc, texts)
    assert enc.split_calls == [["Overall survival", "Adverse events"]]
    assert enc.window_calls == [["Overall survival", "Adverse events"]]
    assert vecs.shape == (5, 64) and vecs.flags.c_contiguous
    assert np.array_equal(vecs[0], vecs[2]) and np.array_equal(vecs[0], vecs[3])
    assert np.array_equal(vecs[1], vecs[4])
    assert np.array_equal(vecs[:2], enc.inner.encode_windows(["Overall survival", "Adverse events"]))


def test_encode_long_text_is_the_renormalised_mean_of_its_windows() -> None:
    enc = HashingEncoder(window_words=4)
    long_text = "Number of participants with dose limiting toxicities during the first treatment cycle"
    short = "Overall survival"
    chunked = enc.split([long_text])
    assert chunked.windows == [
        "Number of participants with",
        "dose limiting toxicities during",
        "the first treatment cycle",
    ]
    windows = enc.encode_windows(chunked.windows)
    expected = windows.sum(axis=0) / np.linalg.norm(windows.sum(axis=0))
    vecs = encode(enc, [short, long_text])
    np.testing.assert_allclose(vecs[1], expected, rtol=0, atol=1e-6)
    assert float(np.linalg.norm(vecs[1])) == pytest.approx(1.0, abs=1e-6)
    # The short text in the same call is its single window's vector, untouched by the long one.
    np.testing.assert_array_equal(vecs[0], enc.encode_windows([short])[0])


def test_encode_empty_list_has_the_right_shape() -> None:
    out = encode(HashingEncoder(dimension=16), [])
    assert out.shape == (0, 16) and out.dtype == np.float32


def test_encode_chunks_returns_window_rows_and_owners() -> None:
    enc = HashingEncoder(window_words=2)
    vecs, owner = encode_chunks(enc, ["a b c", "d"])
    assert owner == [0, 0, 1]
    np.testing.assert_array_equal(vecs, enc.encode_windows(["a b", "c", "d"]))


@settings(max_examples=60, deadline=None)
@given(texts=st.lists(st.text(max_size=80), max_size=12), window=st.integers(1, 8))
def test_encode_rows_are_unit_or_zero(texts: list[str], window: int) -> None:
    vecs = encode(HashingEncoder(dimension=32, window_words=window), texts)
    assert vecs.shape == (len(texts), 32) and vecs.dtype == np.float32
    for text, row in zip(texts, vecs, strict=True):
        norm = float(np.linalg.norm(row))
        if re.search(r"\w", text):
            assert norm == pytest.approx(1.0, abs=1e-5)
        else:
            assert norm == 0.0
    for i, a in enumerate(texts):
        for j in range(i):
            if texts[j] == a:
                assert np.array_equal(vecs[i], vecs[j])


# -- the real packaged model (loaded once per session) ------------------------------------------------


def test_real_encoder_identity(real_encoder: SentenceTransformerEncoder) -> None:
    assert real_encoder.model_id == DEFAULT_MODEL_ID == "sentence-transformers/all-MiniLM-L6-v2"
    assert real_encoder.dimension == 384
    assert re.fullmatch(r"sha256:[0-9a-f]{16}", real_encoder.fingerprint)
    assert real_encoder.window_tokens == 254  # 256 less [CLS] and [SEP]
    assert isinstance(real_encoder, Encoder)


# Cosines measured with this model (bf16 and fp32 agree to ~1e-3); the margin between near and far is wide.
@pytest.mark.parametrize(
    ("anchor", "near", "far", "near_cos", "far_cos"),
    [
        ("objective response rate", "tumour response by RECIST", "the cat sat on the mat", 0.205, 0.019),
        (
            "progression-free survival",
            "time to disease progression or death",
            "serum vitamin D concentration",
            0.550,
            0.095,
        ),
        (
            "adverse events",
            "incidence of treatment-emergent adverse events",
            "overall survival",
            0.749,
            0.152,
        ),
        (
            "pharmacokinetics: maximum plasma concentration",
            "Cmax of the study drug",
            "quality of life",
            0.359,
            0.062,
        ),
    ],
)
def test_real_encoder_similarity_ordering(
    real_encoder: SentenceTransformerEncoder,
    anchor: str,
    near: str,
    far: str,
    near_cos: float,
    far_cos: float,
) -> None:
    v = encode(real_encoder, [anchor, near, far])
    assert v.shape == (3, 384) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert float(v[0] @ v[1]) == pytest.approx(near_cos, abs=0.02)
    assert float(v[0] @ v[2]) == pytest.approx(far_cos, abs=0.02)
    assert float(v[0] @ v[1]) > float(v[0] @ v[2]) + 0.1


def _count_tokens(encoder: SentenceTransformerEncoder, text: str) -> int:
    """Tokens of ``text`` by the model's own tokenizer file, untruncated (the model reads these)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(encoder._path / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return len(tokenizer.encode(text, add_special_tokens=False).ids)


LONG_TEXT = " ".join(
    f"Cycle {i}: participants receive the study drug on day 1, then tumour assessment by RECIST 1.1 "
    f"at week {i * 3}."
    for i in range(1, 31)
)


def test_real_encoder_splits_long_text_into_covering_windows(
    real_encoder: SentenceTransformerEncoder,
) -> None:
    n_tokens = _count_tokens(real_encoder, LONG_TEXT)
    assert n_tokens > 256
    chunked = real_encoder.split(["Overall survival", LONG_TEXT])
    assert chunked.windows[0] == "Overall survival" and chunked.owner[0] == 0
    windows = chunked.windows[1:]
    assert chunked.owner[1:] == [1] * len(windows)
    assert len(windows) == len(split_token_windows(range(n_tokens), 254, 254 - 32))  # type: ignore[arg-type]
    assert len(windows) >= 2
    # Each window is a piece of the text that fits the model, and together they cover all of it.
    starts = []
    position = -1
    for window in windows:
        position = LONG_TEXT.find(window, position + 1)
        assert position >= 0
        starts.append(position)
        assert _count_tokens(real_encoder, window) <= 254
    ends = [s + len(w) for s, w in zip(starts, windows, strict=True)]
    assert starts[0] == 0 and ends[-1] == len(LONG_TEXT)
    assert all(nxt < end for nxt, end in zip(starts[1:], ends, strict=False))  # overlapping


def test_real_encoder_long_text_vector_is_mean_of_windows(real_encoder: SentenceTransformerEncoder) -> None:
    [vec] = encode(real_encoder, [LONG_TEXT])
    windows = real_encoder.encode_windows(real_encoder.split([LONG_TEXT]).windows)
    mean = windows.mean(axis=0)
    np.testing.assert_allclose(vec, mean / np.linalg.norm(mean), atol=1e-5)
    # Not the truncated text: the first window alone is a different vector.
    assert float(vec @ windows[0]) < 0.999


@pytest.mark.slow
def test_real_encoder_bf16_agrees_with_fp32(real_encoder: SentenceTransformerEncoder) -> None:
    fp32 = SentenceTransformerEncoder(precision="fp32", runtime="torch")
    texts = ["objective response rate", LONG_TEXT, "Incidence of treatment-emergent adverse events"]
    a = encode(fp32, texts)
    b = encode(SentenceTransformerEncoder(precision="bf16", runtime="torch"), texts)
    assert fp32.fingerprint == real_encoder.fingerprint
    np.testing.assert_allclose(np.sum(a * b, axis=1), 1.0, atol=2e-3)


def test_real_encoder_onnx_runtime_agrees_with_torch(real_encoder: SentenceTransformerEncoder) -> None:
    # The ONNX graph is exported from the same weights; indexes built by either runtime must serve queries
    # embedded by the other. Mixed lengths in one batch check the padding and the mean over real tokens.
    texts = [
        "objective response rate",
        LONG_TEXT,
        "Incidence of treatment-emergent adverse events (TEAEs) graded by CTCAE 5.0",
        "PFS",
        "Überleben nach 12 Monaten, µg/m² ≤ 1.2e+09",
    ]
    torch_vecs = encode(SentenceTransformerEncoder(runtime="torch"), texts)
    onnx_vecs = encode(SentenceTransformerEncoder(runtime="onnx"), texts)
    assert real_encoder.runtime == "auto"
    np.testing.assert_allclose(np.sum(torch_vecs * onnx_vecs, axis=1), 1.0, atol=1e-4)
    # One text alone (no padding) gives the same vector as in the batch.
    [alone] = encode(SentenceTransformerEncoder(runtime="onnx"), [texts[2]])
    np.testing.assert_allclose(alone, onnx_vecs[2], atol=1e-5)


def test_real_encoder_falls_back_to_torch_when_the_graph_cannot_be_cached(
    real_encoder: SentenceTransformerEncoder, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    encoder = SentenceTransformerEncoder(cache_dir=blocker / "models")
    [vec] = encode(encoder, ["overall survival"])
    assert encoder.runtime == "torch"
    assert "ONNX Runtime unavailable" in caplog.text
    [expected] = encode(real_encoder, ["overall survival"])
    assert float(vec @ expected) == pytest.approx(1.0, abs=1e-4)


# Registry vocabulary that the tokenizer cuts into many pieces, plus numbers, units and unicode.
PIECES = [
    "tumour",
    "immunohistochemistry",
    "pharmacokinetics",
    "CAR-T",
    "1.2e+09",
    "≤",
    "µg/m²",
    "RECIST",
    "1.1",
    "participants",
    "Überleben",
    "anti-PD-1",
    "NCT05731219",
    "dose-limiting",
    "q3w",
    "(",
    "),",
]


@settings(max_examples=30, deadline=None)
@given(words=st.lists(st.sampled_from(PIECES), min_size=150, max_size=700))
def test_real_encoder_windows_always_fit_the_model(
    real_encoder: SentenceTransformerEncoder, words: list[str]
) -> None:
    # Splitting only tokenizes (no forward pass), so this runs fast on the real tokenizer.
    text = " ".join(f"{word} {i}" for i, word in enumerate(words))  # numbered: each window occurs once
    windows = real_encoder.split([text]).windows
    assert len(windows) >= 2
    position, ends = -1, []
    for window in windows:
        assert _count_tokens(real_encoder, window) <= 254
        position = text.find(window, position + 1)
        assert position >= 0 and (not ends or position <= ends[-1])  # no gap after the last window
        ends.append(position + len(window))
    assert text.startswith(windows[0]) and ends[-1] == len(text)
