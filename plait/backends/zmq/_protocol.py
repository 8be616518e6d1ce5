"""The messages between a ZMQExecutor and its worker pools (see docs/protocol.md).

A message is one msgpack *envelope* frame, a map with a ``type`` and typed fields,
followed by opaque *payload* frames (pickled functions, calls, results). Decoding
checks the envelope's shape and the number of payload frames and never looks inside
a payload, so anything a stranger sends is either a well-formed message or a
``ProtocolError``, never an unpickled object.
"""

from __future__ import annotations

import math
import platform
from collections.abc import Sequence
from typing import Any

import attrs
import msgpack  # type: ignore[import-untyped]

__all__ = [
    "MAX_ENVELOPE_BYTES",
    "PROTOCOL_VERSION",
    "Message",
    "ProtocolError",
    "decode",
    "encode",
    "mismatch",
    "python_version",
]

PROTOCOL_VERSION = 1
# An envelope is small (rows of ids and numbers); anything bigger is an attack or a bug.
MAX_ENVELOPE_BYTES = 1 << 20

_NUMBER = (int, float)
_OPTIONAL_NUMBER = (int, float, type(None))

# Every message type and the types of its fields.
_FIELDS: dict[str, dict[str, tuple[type, ...]]] = {
    "register": {
        "protocol": (int,),
        "plait": (str,),
        "python": (str,),
        "capacity": (int,),
        "host": (str,),
        "pool": (str,),
        "pid": (int,),
    },
    "accept": {"heartbeat_period": _NUMBER, "heartbeat_threshold": _NUMBER, "sys_path": (list,)},
    "refuse": {"reason": (str,)},
    "tasks": {"tasks": (list,)},
    "results": {"results": (list,)},
    "cancel": {"ids": (list,)},
    "heartbeat": {},
    "drain": {},
    "drained": {},
    "shutdown": {},
}

# The columns of a row of ``tasks`` and ``results`` (a row per task: checked often). msgpack
# makes only exact types, so each column is the set of them it takes (bool is an int, as
# for isinstance): a lookup per value is several times faster than isinstance with a tuple.
_INT = frozenset({int, bool})
_NUMBER_COLUMN = _INT | {float}
_OPTIONAL_NUMBER_COLUMN = _NUMBER_COLUMN | {type(None)}
TASK_ROW = (_INT, frozenset({str}), frozenset({bytes}), frozenset({bool}), _OPTIONAL_NUMBER_COLUMN)
# id, ok, started, ended, worker, cpu_seconds, peak_rss (the last two nil when not measured)
RESULT_ROW = (
    _INT, frozenset({bool}), _NUMBER_COLUMN, _NUMBER_COLUMN, frozenset({str}), _OPTIONAL_NUMBER_COLUMN,
    _INT | {type(None)},
)
_holds = frozenset.__contains__


class ProtocolError(ValueError):
    """A message that is not one of ours: it is dropped and logged."""


@attrs.frozen
class Message:
    """A decoded message: its type, its envelope's fields, its payload frames."""

    type: str
    fields: dict[str, Any]
    payloads: Sequence[bytes] = ()

    def __getitem__(self, name: str) -> Any:
        return self.fields[name]


def encode(type_: str, payloads: Sequence[bytes] = (), **fields: Any) -> list[bytes]:
    """The frames of a message.

    >>> encode("heartbeat")
    [b'\\x81\\xa4type\\xa9heartbeat']
    >>> decode(encode("cancel", ids=[3, 4]))["ids"]
    [3, 4]
    """
    return [msgpack.packb({"type": type_, **fields}, use_bin_type=True), *payloads]


def decode(frames: Sequence[bytes]) -> Message:
    """The message in ``frames``, checked, or a ProtocolError saying what is wrong.

    >>> decode(encode("results", [b"x"], results=[[1, True, 0.0, 1.0, "w", 0.5, 1024]])).payloads
    [b'x']
    >>> decode([b"\\xc1"])
    Traceback (most recent call last):
    ...
    plait.backends.zmq._protocol.ProtocolError: the envelope is not msgpack: ...
    >>> decode(encode("tasks", tasks=[[1, "f", b"k", True, None]]))
    Traceback (most recent call last):
    ...
    plait.backends.zmq._protocol.ProtocolError: a tasks message like this one needs 2 payload frames, got 0
    >>> decode(encode("heartbeat", [b"x"]))
    Traceback (most recent call last):
    ...
    plait.backends.zmq._protocol.ProtocolError: a heartbeat message like this one needs 0 payload frames, got 1
    """
    if not frames:
        raise ProtocolError("an empty message")
    envelope, payloads = frames[0], list(frames[1:])
    if len(envelope) > MAX_ENVELOPE_BYTES:
        raise ProtocolError(f"an envelope of {len(envelope)} bytes, more than the {MAX_ENVELOPE_BYTES} allowed")
    try:
        fields = msgpack.unpackb(envelope, raw=False, strict_map_key=True)
    except Exception as error:  # msgpack raises many kinds for bad input
        raise ProtocolError(f"the envelope is not msgpack: {type(error).__name__}: {error}") from None
    if not isinstance(fields, dict):
        raise ProtocolError(f"the envelope is a {type(fields).__name__}, not a map")
    type_ = fields.pop("type", None)
    schema = _FIELDS.get(type_) if isinstance(type_, str) else None
    if schema is None:
        raise ProtocolError(f"unknown message type {type_!r}")
    for name, types in schema.items():
        if not isinstance(fields.get(name), types):
            raise ProtocolError(f"a {type_} message needs {name!r} of type {'/'.join(t.__name__ for t in types)}")
    expected = _payload_count(type_, fields)
    if expected != len(payloads):
        raise ProtocolError(f"a {type_} message like this one needs {expected} payload frames, got {len(payloads)}")
    return Message(type_, fields, payloads)


def _payload_count(type_: str, fields: dict[str, Any]) -> int:
    if type_ == "tasks":
        return sum(1 + _row(row, TASK_ROW, type_)[3] for row in fields["tasks"])
    if type_ == "results":
        for row in fields["results"]:
            _row(row, RESULT_ROW, type_)
        return len(fields["results"])
    if type_ == "cancel" and not all(isinstance(i, int) for i in fields["ids"]):
        raise ProtocolError("a cancel message needs integer ids")
    return 0


def _row(row: Any, shape: tuple[frozenset[type], ...], type_: str) -> list[Any]:
    if type(row) is list and len(row) == len(shape) and all(map(_holds, shape, map(type, row))) and _finite(row):
        return row
    raise ProtocolError(f"a malformed row in a {type_} message: {row!r:.200}")


def _finite(row: list[Any]) -> bool:
    """Whether no float in ``row`` is NaN or infinite: such a time is as malformed as a
    string (arithmetic on it raises later)."""
    for value in row:  # noqa: SIM110  (a loop: three times faster than all() over a generator)
        if type(value) is float and not math.isfinite(value):
            return False
    return True


def python_version() -> str:
    """``major.minor`` of this Python: pickled code only loads on the same one."""
    return ".".join(platform.python_version_tuple()[:2])


def mismatch(ours: dict[str, str | int], theirs: dict[str, Any]) -> str | None:
    """Why a pool with versions ``theirs`` cannot work with us, or None if it can.

    >>> mismatch({"protocol": 1, "plait": "0.1"}, {"protocol": 2, "plait": "0.1"})
    'protocol version 2 in the pool, 1 in the executor'
    >>> mismatch({"protocol": 1}, {"protocol": 1}) is None
    True
    """
    problems = [
        f"{name} version {theirs.get(name)} in the pool, {value} in the executor"
        for name, value in ours.items()
        if theirs.get(name) != value
    ]
    return "; ".join(problems) or None
