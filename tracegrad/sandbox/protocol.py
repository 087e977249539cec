"""What a sandboxed process sends back, and how the caller reads it without trusting it.

The child sends one message: a length, then a pickle of ``(kind, header, payload)``.
``header`` is plain data (what the caller needs even when the payload cannot be
rebuilt: the exception's type and text, the frames of its traceback, the caller's
extra data); ``payload`` is the pickled result or exception.

Unpickling runs code chosen by whoever wrote the bytes, and the bytes come from
model-written code. So the caller unpickles with ``find_class`` restricted to value
types: built-in containers and numbers, a few standard-library value types, numpy
arrays, and classes already imported by the caller that only hold data (dataclasses,
named tuples, enums, pydantic models, exceptions). Modules are never imported, and no
function outside that list is ever called.
"""

from __future__ import annotations

import builtins
import dataclasses
import enum
import io
import os
import pickle
import struct
import sys
import traceback
from dataclasses import dataclass
from typing import Any

from tblib import Traceback

from tracegrad.sandbox.errors import SandboxError

HEADER = struct.Struct(">Q")
#: Frames of a traceback that are sent back (the last ones; the rest says nothing new).
MAX_FRAMES = 64
_TEXT_LIMIT = 4000
_LIBRARY = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep  # tracegrad's own files

_PLAIN = frozenset({
    ("builtins", n)
    for n in ("complex", "set", "frozenset", "bytearray", "bytes", "slice", "range", "object",
              "int", "float", "str", "list", "dict", "tuple", "bool")
}) | frozenset({
    ("collections", "OrderedDict"), ("collections", "deque"), ("collections", "Counter"),
    ("collections", "defaultdict"), ("copyreg", "_reconstructor"),
    ("datetime", "date"), ("datetime", "time"), ("datetime", "datetime"), ("datetime", "timedelta"),
    ("datetime", "timezone"), ("decimal", "Decimal"), ("fractions", "Fraction"), ("uuid", "UUID"),
    ("pathlib", "PurePosixPath"), ("pathlib", "PureWindowsPath"), ("pathlib", "PosixPath"),
    ("pathlib", "WindowsPath"), ("pathlib", "Path"),
    ("tracegrad.sandbox.errors", "_sandbox_error"), ("tracegrad.errors", "_invalid_value"),
})  # fmt: skip
_NUMPY = frozenset({
    (m, n)
    for m in ("numpy.core.multiarray", "numpy._core.multiarray")
    for n in ("_reconstruct", "scalar")
}) | frozenset({
    ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
})  # fmt: skip
_JAX = frozenset({("jax._src.array", "_reconstruct_array")})  # rebuilds a numpy array (checked), then moves it


@dataclass
class Message:
    """A message read back: ``kind`` is "return", "raise", "exit" or "unsendable"."""

    kind: str
    header: dict[str, Any]
    payload: bytes | None


class _Refused(pickle.UnpicklingError):
    def __init__(self, module: str, name: str) -> None:
        super().__init__(f"{module}.{name}")
        self.qualified = f"{module}.{name}"


def _holds_data(obj: Any) -> bool:
    """Whether ``obj`` is a class whose instances can be rebuilt without calling other code."""
    if not isinstance(obj, type):
        return False
    if issubclass(obj, (BaseException, enum.Enum)) or dataclasses.is_dataclass(obj):
        return True
    if issubclass(obj, tuple) and hasattr(obj, "_fields"):  # a named tuple
        return True
    return any(c.__name__ == "BaseModel" and c.__module__.startswith("pydantic") for c in obj.__mro__)


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        key = (module, name)
        if key in _PLAIN or (key in _NUMPY and "numpy" in sys.modules) or (key in _JAX and "jax" in sys.modules):
            return super().find_class(module, name)
        if module == "builtins":  # built-in exception classes
            found = getattr(builtins, name, None)
            if isinstance(found, type) and issubclass(found, BaseException):
                return found
            raise _Refused(module, name)
        owner = sys.modules.get(module)  # never import: importing runs code
        found: Any = owner
        for part in name.split("."):
            found = getattr(found, part, None)
        if owner is None or not _holds_data(found):
            raise _Refused(module, name)
        return found


def loads(data: bytes) -> Any:
    """Unpickle ``data`` with classes restricted as the module docstring says."""
    return _Unpickler(io.BytesIO(data)).load()


def frame(body: bytes) -> bytes:
    return HEADER.pack(len(body)) + body


# -- the child's side --------------------------------------------------------------------


def encode_return(value: Any, extra: Any) -> bytes:
    """The message for a call that returned ``value``."""
    try:
        payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except BaseException as exc:  # any failure to pickle, even a hostile __reduce__
        header = {"type": _type_name(value), "error": _text(exc, with_type=True), "extra": extra}
        return frame(pickle.dumps(("unsendable", header, None)))
    return frame(pickle.dumps(("return", {"extra": extra}, payload)))


def encode_raise(exc: BaseException, extra: Any) -> bytes:
    """The message for a call that raised ``exc`` (``kind`` "exit" when it is not an Exception)."""
    header = {
        "type": _type_name(exc),
        "text": _text(exc),
        "frames": _frames(exc.__traceback__),
        "extra": extra,
    }
    if isinstance(exc, SystemExit):
        code = exc.code
        header["code"] = code if code is None or isinstance(code, int) else _text(code)
    kind = "raise" if isinstance(exc, Exception) else "exit"
    try:
        payload: bytes | None = pickle.dumps(exc.with_traceback(None), protocol=pickle.HIGHEST_PROTOCOL)
    except BaseException:
        payload = None
    return frame(pickle.dumps((kind, header, payload)))


def _type_name(value: Any) -> str:
    cls = type(value)
    return cls.__qualname__ if cls.__module__ in ("builtins", "__main__") else f"{cls.__module__}.{cls.__qualname__}"


def _text(value: Any, *, with_type: bool = False) -> str:
    try:
        text = str(value)
    except BaseException:
        text = f"<{type(value).__name__} whose str() fails>"
    if with_type:
        text = f"{type(value).__name__}: {text}"
    return text if len(text) <= _TEXT_LIMIT else text[:_TEXT_LIMIT] + " ..."


def _frames(tb: Any) -> list[tuple[str, int, str]]:
    """The frames of ``tb`` after tracegrad's own (which ran the call), as (file, line, function)."""
    frames = [(f.filename, f.lineno or 0, f.name) for f in traceback.extract_tb(tb)]
    while frames and frames[0][0].startswith(_LIBRARY):
        frames.pop(0)
    return frames[-MAX_FRAMES:]


# -- the caller's side -----------------------------------------------------------------


def read_message(body: bytes) -> Message:
    """The message in ``body``; raises ``SandboxError`` when it is not one."""
    try:
        kind, header, payload = loads(body)
        if kind not in ("return", "raise", "exit", "unsendable") or not isinstance(header, dict):
            raise ValueError(kind)
        if payload is not None and not isinstance(payload, bytes):
            raise ValueError(type(payload))
    except Exception:
        raise SandboxError(
            "the sandboxed process sent back something that is not a result", reason="transfer"
        ) from None
    return Message(kind, header, payload)


def rebuilt_value(message: Message, label: str) -> Any:
    """The returned value; raises ``SandboxError`` naming its type when it cannot be rebuilt here."""
    if message.kind == "unsendable":
        raise SandboxError(
            f"the result of {label}, a {message.header.get('type')}, cannot be sent back from the sandbox's "
            f"process ({message.header.get('error')}); return plain data (numbers, text, lists, dicts, arrays, "
            "dataclasses), or run this function in-process: bundle(..., sandbox=False)",
            reason="transfer",
        )
    try:
        return loads(message.payload or b"")
    except _Refused as exc:
        raise SandboxError(
            f"the result of {label} holds a {exc.qualified}, which is not rebuilt from the sandbox's process "
            "(only plain data, arrays, and dataclasses, named tuples, enums and pydantic models of modules already "
            "imported are); return plain data, or run this function in-process: bundle(..., sandbox=False)",
            reason="transfer",
        ) from None
    except Exception as exc:
        raise SandboxError(
            f"the result of {label} could not be read back from the sandbox's process ({type(exc).__name__}: {exc})",
            reason="transfer",
        ) from None


def rebuilt_exception(message: Message) -> BaseException:
    """The exception the call raised, with the traceback of the code that raised it.

    An exception that cannot be rebuilt here (its class is defined by the code itself)
    becomes a ``SandboxError`` with its type name and message.
    """
    header = message.header
    exc: BaseException | None = None
    if message.payload is not None:
        try:
            exc = loads(message.payload)
        except Exception:
            exc = None
    if not isinstance(exc, BaseException):
        exc = SandboxError(f"{header.get('type')}: {header.get('text')}", reason="raised")
    tb = _traceback(header.get("frames"))
    return exc.with_traceback(tb) if tb is not None else exc


def _traceback(frames: Any) -> Any:
    """A real traceback object with ``frames`` (file, line, function) in it, or None."""
    if not isinstance(frames, list):
        return None
    chain: dict[str, Any] | None = None
    for item in reversed(frames[-MAX_FRAMES:]):
        if not (isinstance(item, tuple) and len(item) == 3):
            return None
        filename, lineno, name = item
        if not (isinstance(filename, str) and isinstance(name, str) and isinstance(lineno, int)):
            return None
        lineno = lineno if 0 < lineno < 1_000_000 else 1
        code = {"co_filename": filename[:4096], "co_name": name[:256]}
        step = {"f_globals": {}, "f_locals": {}, "f_code": code, "f_lineno": lineno}
        chain = {"tb_frame": step, "tb_lineno": lineno, "tb_next": chain}
    if chain is None:
        return None
    try:
        return Traceback.from_dict(chain).as_traceback()
    except Exception:
        return None
