"""index.files: generation-based atomic saves, checksummed reads, the writer lock, clear errors."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from index import files
from index.files import FORMAT, FORMAT_VERSION, META, IndexFileError, read_file, read_meta, save_generation


def _payload(tag: str) -> dict[str, tuple[str, str, bytes]]:
    return {
        "store.tci": ("vectors.tci", "faiss", f"tci-{tag}".encode()),
        "studies": ("studies", "jsonl.gz", f"studies-{tag}".encode()),
    }


def _names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_save_generation_writes_files_and_meta(tmp_path: Path) -> None:
    out = tmp_path / "idx"
    assert save_generation(out, _payload("a"), {"counts": {"studies": 1}}) == 1
    assert _names(out) == [".lock", META, "studies.1.jsonl.gz", "vectors.tci.1.faiss"]
    meta = read_meta(out)
    assert meta == {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "generation": 1,
        "counts": {"studies": 1},
        "files": {
            "store.tci": {
                "name": "vectors.tci.1.faiss",
                "sha256": hashlib.sha256(b"tci-a").hexdigest(),
                "bytes": 5,
            },
            "studies": {
                "name": "studies.1.jsonl.gz",
                "sha256": hashlib.sha256(b"studies-a").hexdigest(),
                "bytes": 9,
            },
        },
    }
    assert read_file(out, meta, "store.tci") == b"tci-a"
    assert read_file(out, meta, "studies") == b"studies-a"


def test_save_generation_next_generation_replaces_the_old(tmp_path: Path) -> None:
    save_generation(tmp_path, _payload("a"), {})
    assert save_generation(tmp_path, _payload("b"), {}) == 2
    assert _names(tmp_path) == [".lock", META, "studies.2.jsonl.gz", "vectors.tci.2.faiss"]
    meta = read_meta(tmp_path)
    assert meta["generation"] == 2 and read_file(tmp_path, meta, "studies") == b"studies-b"


def test_save_generation_meta_cannot_override_bookkeeping(tmp_path: Path) -> None:
    save_generation(tmp_path, _payload("a"), {"generation": 99, "files": {}, "note": "x"})
    meta = read_meta(tmp_path)
    assert (meta["generation"], meta["note"], sorted(meta["files"])) == (1, "x", ["store.tci", "studies"])


def test_interrupted_save_keeps_previous_generation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    save_generation(tmp_path, _payload("a"), {})
    real_write = files._write_durably

    def crash_on_meta(path: Path, data: bytes) -> None:
        if path.name == META:
            raise OSError("killed")
        real_write(path, data)

    monkeypatch.setattr(files, "_write_durably", crash_on_meta)
    with pytest.raises(OSError, match="killed"):
        save_generation(tmp_path, _payload("b"), {})
    # The new generation's data files are there, but meta.json still names generation 1, which is whole.
    assert "studies.2.jsonl.gz" in _names(tmp_path)
    meta = read_meta(tmp_path)
    assert meta["generation"] == 1 and read_file(tmp_path, meta, "studies") == b"studies-a"
    monkeypatch.setattr(files, "_write_durably", real_write)
    # The lock was released, and the next save steps over the stray generation and cleans it up.
    assert save_generation(tmp_path, _payload("c"), {}) == 3
    assert _names(tmp_path) == [".lock", META, "studies.3.jsonl.gz", "vectors.tci.3.faiss"]


def test_stray_temporary_files_are_removed(tmp_path: Path) -> None:
    save_generation(tmp_path, _payload("a"), {})
    (tmp_path / ".meta.json.tmp").write_bytes(b"{half")
    (tmp_path / ".vectors.tci.7.faiss.tmp").write_bytes(b"half")
    (tmp_path / "notes.txt").write_text("kept")
    assert save_generation(tmp_path, _payload("b"), {}) == 8  # past the stray generation 7
    assert _names(tmp_path) == [".lock", META, "notes.txt", "studies.8.jsonl.gz", "vectors.tci.8.faiss"]


def test_read_meta_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(IndexFileError) as err:
        read_meta(tmp_path / "nope")
    assert (
        str(err.value)
        == f"{tmp_path / 'nope'}: no such index directory (build one with `trialsift index build`)"
    )


def test_read_meta_directory_without_meta(tmp_path: Path) -> None:
    with pytest.raises(IndexFileError) as err:
        read_meta(tmp_path)
    assert (
        str(err.value)
        == f"{tmp_path}: not an index directory (no meta.json); build one with `trialsift index build`"
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"format": "trialsift-ind', "unreadable ("),
        ("[]", "not a trialsift index (format is not 'trialsift-index')"),
        ('{"format": "other"}', "not a trialsift index (format is not 'trialsift-index')"),
        (
            '{"format": "trialsift-index", "version": 1}',
            "index format version 1, this trialsift reads version 2; "
            "rebuild the index with `trialsift index build`",
        ),
    ],
)
def test_read_meta_refuses_bad_meta(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / META).write_text(content)
    with pytest.raises(IndexFileError) as err:
        read_meta(tmp_path)
    assert str(err.value).startswith(f"{tmp_path / META}: {message}")


def test_read_file_damaged(tmp_path: Path) -> None:
    save_generation(tmp_path, _payload("a"), {})
    path = tmp_path / "vectors.tci.1.faiss"
    data = bytearray(path.read_bytes())
    data[2] ^= 0x01
    path.write_bytes(bytes(data))  # same size, one bit different
    with pytest.raises(IndexFileError) as err:
        read_file(tmp_path, read_meta(tmp_path), "store.tci")
    assert str(err.value) == f"{path}: contents do not match meta.json (damaged file); rebuild the index"


def test_read_file_missing_or_unlisted(tmp_path: Path) -> None:
    save_generation(tmp_path, _payload("a"), {})
    meta = read_meta(tmp_path)
    (tmp_path / "studies.1.jsonl.gz").unlink()
    with pytest.raises(IndexFileError) as err:
        read_file(tmp_path, meta, "studies")
    assert str(err.value) == (
        f"{tmp_path / 'studies.1.jsonl.gz'}: cannot read (No such file or directory); "
        "the index is incomplete, rebuild it"
    )
    with pytest.raises(IndexFileError) as err:
        read_file(tmp_path, meta, "store.summary")
    assert str(err.value) == f"{tmp_path / META}: lists no file 'store.summary'; rebuild the index"


def test_write_lock_refuses_a_second_writer(tmp_path: Path) -> None:
    with files.write_lock(tmp_path):
        with pytest.raises(IndexFileError) as err:
            save_generation(tmp_path, _payload("a"), {})
        assert str(err.value) == f"{tmp_path}: another process is writing this index"
    assert save_generation(tmp_path, _payload("a"), {}) == 1  # released


def test_meta_json_is_stable_text(tmp_path: Path) -> None:
    save_generation(tmp_path, _payload("a"), {"b": 1, "a": 2})
    text = (tmp_path / META).read_text()
    assert text.endswith("}\n") and json.loads(text)["a"] == 2
    assert text.index('"a"') < text.index('"b"')  # sorted keys: diffs between saves stay readable
