"""Assembling an embedded model from its numbered part packages: verified, atomic, clear errors."""

from __future__ import annotations

import hashlib
import sys

import pytest

from tracegrad.llm.errors import LLMConfigError
from tracegrad.llm.local.weights import ModelWeights, assemble, available, parts_installed

PARTS = [b"first part-", b"second part-", b"third"]


def _weights(tag: str, parts=PARTS, *, sha256: str | None = None, size: int | None = None) -> ModelWeights:
    whole = b"".join(parts)
    return ModelWeights(
        name=f"toy-{tag}",
        title=f"Toy model {tag}",
        package=f"toy-{tag}-part{{n}}",
        version="1.0",
        parts=len(parts),
        size=len(whole) if size is None else size,
        sha256=sha256 or hashlib.sha256(whole).hexdigest(),
    )


@pytest.fixture
def install(tmp_path, monkeypatch):
    """Installs part packages (``toy_<tag>_partN/data/partNN.bin``) on sys.path."""
    site = tmp_path / "site"
    monkeypatch.syspath_prepend(str(site))

    def put(tag: str, parts=PARTS, skip: tuple[int, ...] = ()) -> None:
        for n, data in enumerate(parts, start=1):
            if n in skip:
                continue
            pkg = site / f"toy_{tag}_part{n}"
            (pkg / "data").mkdir(parents=True)
            (pkg / "__init__.py").write_text("")
            (pkg / "data" / f"part{n:02d}.bin").write_bytes(data)
        for name in [m for m in sys.modules if m.startswith(f"toy_{tag}_")]:
            del sys.modules[name]

    return put


def test_parts_are_assembled_once_in_order_and_verified(tmp_path, install):
    install("a")
    weights = _weights("a")
    assert parts_installed(weights) and available(weights, tmp_path / "models")
    path = assemble(weights, tmp_path / "models")
    assert path.read_bytes() == b"".join(PARTS)
    assert path.name == "toy-a.gguf"
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []
    stamp = path.stat().st_mtime_ns
    assert assemble(weights, tmp_path / "models") == path  # second use: no new assembly
    assert path.stat().st_mtime_ns == stamp


def test_a_missing_part_is_named(tmp_path, install):
    install("b", skip=(2,))
    weights = _weights("b")
    assert not parts_installed(weights) and not available(weights, tmp_path / "models")
    with pytest.raises(LLMConfigError, match=r"toy-b-part2 not installed \(version 1.0\)"):
        assemble(weights, tmp_path / "models")
    assert list((tmp_path / "models").iterdir()) == []  # nothing left behind


def test_a_checksum_mismatch_is_reported_and_leaves_no_file(tmp_path, install):
    install("c")
    weights = _weights("c", sha256="0" * 64)
    with pytest.raises(LLMConfigError, match="SHA-256") as err:
        assemble(weights, tmp_path / "models")
    assert "0" * 64 in str(err.value) and "reinstall" in str(err.value)
    assert list((tmp_path / "models").iterdir()) == []


def test_a_size_mismatch_is_reported(tmp_path, install):
    install("d")
    with pytest.raises(LLMConfigError, match="bytes"):
        assemble(_weights("d", size=5), tmp_path / "models")


def test_a_damaged_copy_is_assembled_again(tmp_path, install):
    install("e")
    weights = _weights("e")
    path = assemble(weights, tmp_path / "models")
    path.write_bytes(b"x" * weights.size)  # same size, other bytes: the record no longer matches
    assert assemble(weights, tmp_path / "models").read_bytes() == b"".join(PARTS)


def test_orphans_of_a_killed_assembly_are_removed(tmp_path, install):
    install("f")
    models = tmp_path / "models"
    models.mkdir()
    orphan = models / ".toy-f.gguf.abc123.tmp"
    orphan.write_bytes(b"half")
    assemble(_weights("f"), models)
    assert not orphan.exists()


def test_a_verified_copy_is_available_without_its_parts(tmp_path, install, monkeypatch):
    install("g")
    weights = _weights("g")
    assemble(weights, tmp_path / "models")
    monkeypatch.setattr(sys, "path", [p for p in sys.path if "site" not in p])
    for name in [m for m in sys.modules if m.startswith("toy_g_")]:
        del sys.modules[name]
    assert not parts_installed(weights)
    assert available(weights, tmp_path / "models")


def test_requirements_name_every_part_by_version():
    assert _weights("h").requirements() == ["toy-h-part1==1.0", "toy-h-part2==1.0", "toy-h-part3==1.0"]
