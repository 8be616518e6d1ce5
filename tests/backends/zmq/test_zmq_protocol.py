"""The wire: envelopes decode or raise ProtocolError, and the executor survives any bytes."""

from __future__ import annotations

import logging
import re
from typing import Any

import msgspec
import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import plait as pl
from plait.backends.zmq._frames import join
from plait.backends.zmq._protocol import (
    MAX_ENVELOPE_BYTES,
    Accept,
    Cancel,
    Drain,
    Drained,
    Heartbeat,
    Message,
    ProtocolError,
    Refuse,
    Register,
    ResultRow,
    Results,
    Shutdown,
    TaskRow,
    Tasks,
    decode,
    encode,
)
from tests.backends.zmq.zmq_apps import FAST, inc, keyed_dealer, total

# One well-formed message of every type, with its payloads.
EXAMPLES: list[tuple[Message, list[bytes]]] = [
    (Register(protocol=2, plait="0.1.0", python="3.11", capacity=2, host="h", pool="p", pid=1), []),
    (Accept(heartbeat_period=1, heartbeat_threshold=5.0, sys_path=["/a"], usage_interval=0.0, max_message_bytes=9), []),
    (Refuse("no"), []),
    (
        Tasks([TaskRow(1, "f", b"key", None, fn_size=2, call_size=4), TaskRow(2, "f", b"key", 3.0, 0, 1)]),
        [b"fn", b"call", b"c"],
    ),
    (Results([ResultRow(1, True, 0.0, 1.0, 0.5, 1024, size=7, worker="w")]), [b"payload"]),
    (Cancel([3, 4]), []),
    (Heartbeat([[1.0, 50.0, 10, 20, 30, 0.5, 2]], [[7, 1.0, None, 1024, 2048]]), []),
    (Drain(), []),
    (Drained(), []),
    (Shutdown(), []),
]
VALID = [encode(message, payloads) for message, payloads in EXAMPLES]
TAGS = sorted(type(message).__struct_config__.tag for message, _ in EXAMPLES)  # type: ignore[type-var]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(), st.text(max_size=8))
msgpack_values = st.recursive(
    scalars | st.binary(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
pack = msgspec.msgpack.encode
envelopes = st.one_of(
    st.binary(max_size=64),
    msgpack_values.map(pack),
    st.sampled_from(VALID).flatmap(lambda frames: st.integers(0, len(frames[0]) - 1).map(lambda n: frames[0][:n])),
)
payloads = st.lists(st.binary(max_size=16), max_size=3)
random_messages = st.lists(envelopes, min_size=1, max_size=1).flatmap(lambda first: payloads.map(first.__add__))
# Known message types: a well-formed envelope with any frames after it, and a known tag
# followed by random fields (rows of random cells among them).
# At least one frame: VALID's register as it is would register the fuzzer as a pool.
wrong_frames = st.sampled_from(VALID).flatmap(
    lambda frames: st.lists(st.binary(max_size=16), min_size=1, max_size=3).map(lambda rest: [frames[0], *rest])
)
rows = st.lists(msgpack_values, min_size=5, max_size=8)
field_values = msgpack_values | st.lists(rows, max_size=3) | st.floats() | st.integers(-2, 2)
wrong_fields = st.builds(
    lambda tag, fields, rest: [pack([tag, *fields]), *rest],
    st.sampled_from(TAGS),
    st.lists(field_values, max_size=5),
    payloads,
)
messages = st.one_of(random_messages, wrong_frames, wrong_fields)


@given(messages)
def test_decoding_any_bytes_gives_a_message_or_a_protocol_error(frames: list[bytes]) -> None:
    try:
        message, payload = decode(frames)
    except ProtocolError:
        return
    again = encode(message, [payload] if payload else [])
    assert again[1:] == frames[1:]
    assert decode(again) == (message, payload)


@pytest.mark.parametrize(("message", "payloads"), EXAMPLES, ids=[type(m).__name__ for m, _ in EXAMPLES])
def test_every_kind_of_message_comes_back_as_it_was_sent(message: Message, payloads: list[bytes]) -> None:
    assert decode(encode(message, payloads)) == (message, b"".join(payloads))


def _wrong(value: Any) -> Any:
    """A value of another type than ``value``'s, that no field of that type takes."""
    return 1 if isinstance(value, (str, bytes, list)) else "x"


def _with(values: list[Any], index: int, value: Any) -> list[Any]:
    return [*values[:index], value, *values[index + 1 :]]


def _malformed(message: Message) -> list[tuple[str, list[Any]]]:
    """``message`` as a msgpack array, spoiled each way one record can be: every field,
    and every field of its first row, of the wrong type; a field too few; one too many."""
    fields = msgspec.to_builtins(message)  # [tag, field, ...]
    spoiled: list[tuple[str, list[Any]]] = []
    for index, value in enumerate(fields[1:], start=1):
        spoiled.append((f"field {index} of the wrong type", _with(fields, index, _wrong(value))))
        if isinstance(value, list) and value and isinstance(value[0], list):  # rows: spoil each cell of the first
            first, rest = value[0], value[1:]
            for cell, content in enumerate(first):
                rows = [_with(first, cell, _wrong(content)), *rest]
                spoiled.append((f"cell {cell} of a row of the wrong type", _with(fields, index, rows)))
            if not isinstance(message, Heartbeat):  # its rows' lengths are checked by _sampling (NodeSample.of)
                spoiled.append(("a row a cell short", _with(fields, index, [first[:-1], *rest])))
                spoiled.append(("a row a cell long", _with(fields, index, [[*first, 0], *rest])))
    if len(fields) > 1 and not isinstance(message, Heartbeat):  # a heartbeat's fields are optional
        spoiled.append(("a field too few", fields[:-1]))
    spoiled.append(("a field too many", [*fields, 0]))
    return spoiled


MALFORMED = [
    pytest.param(pack(fields), payloads, id=f"{type(message).__name__}: {how}")
    for message, payloads in EXAMPLES
    for how, fields in _malformed(message)
]


@pytest.mark.parametrize(("envelope", "payloads"), MALFORMED)
def test_a_malformed_record_of_each_kind_is_a_protocol_error(envelope: bytes, payloads: list[bytes]) -> None:
    with pytest.raises(ProtocolError, match=r"malformed envelope|payload bytes"):
        decode([envelope, b"".join(payloads)] if payloads else [envelope])


nan_row = ResultRow(1, True, float("nan"), 1.0, None, None, 1, "w")


@pytest.mark.parametrize(
    "frames",
    [
        encode(Heartbeat(), [b"x"]),
        [*encode(Drained(), [b"x"]), b"y"],
        [encode(Heartbeat())[0], b""],  # an empty payload frame is still one too many
        encode(Results([ResultRow(1, True, 0.0, 1.0, None, None, 1, "w")])),  # its payload is missing
        encode(Results([ResultRow(1, True, 0.0, 1.0, None, None, 2, "w")]), [b"x"]),  # a byte short
        encode(Results([ResultRow(1, True, 0.0, 1.0, None, None, 1, "w")]), [b"x", b"y"]),  # a byte long
        encode(Results([nan_row]), [b"x"]),
        encode(Results([ResultRow(1, True, 0.0, float("inf"), None, None, 1, "w")]), [b"x"]),
        encode(Results([ResultRow(1, True, -1.0, 1.0, None, None, 1, "w")]), [b"x"]),
        encode(Results([ResultRow(1, True, 0.0, 1.0, None, None, 0, "w")])),  # a payload of nothing is none sent
        encode(Tasks([TaskRow(1, "f", b"key", float("nan"), 0, 1)]), [b"c"]),
        encode(Tasks([TaskRow(1, "f", b"key", None, -1, 2)]), [b"c"]),
        [pack(["cancel", "not a list"])],
        [pack(["cancel", [1, True]])],  # a bool is not an id
        [pack({"type": "heartbeat"})],  # protocol 1's map envelopes are not ours any more
        [pack(["pieces", [1]])],  # a table frame is never a message
    ],
)
def test_a_known_type_with_wrong_frames_or_fields_is_a_protocol_error(frames: list[bytes]) -> None:
    with pytest.raises(ProtocolError):
        decode(frames)


@pytest.mark.parametrize("table", [["pieces", ["x"]], ["pieces", [0]], ["pieces"], ["pieces", [1], 2], ["pieces", 1]])
def test_a_malformed_table_of_pieces_is_a_protocol_error(table: list[Any]) -> None:
    with pytest.raises(ProtocolError):  # from join, or from decode when it is not even taken for a table
        decode(join([pack(table), b"x"]))


def test_an_oversized_envelope_is_refused_before_it_is_parsed() -> None:
    with pytest.raises(ProtocolError, match="more than"):
        decode([b"\x00" * (MAX_ENVELOPE_BYTES + 1)])


def test_the_executor_drops_thousands_of_bad_messages_and_keeps_serving(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="plait.zmq")
    # The flood can take longer than the default idle_timeout on a loaded machine: the pool must stay.
    provider = pl.LocalProvider(workers=2)
    executor = pl.ZMQExecutor(provider=provider, max_message_bytes=4 << 20, idle_timeout=600, **FAST)
    with pl.Runtime([executor]) as rt, zmq.Context() as context:
        assert rt.run(inc(0)) == 1
        sent = 0

        @settings(max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(messages)
        def send(frames: list[bytes]) -> None:
            nonlocal sent
            attacker.send_multipart(frames)
            sent += 1

        attacker = keyed_dealer(context, executor)  # one that holds the keys: strangers are not even heard
        send()
        attacker.send_multipart([b"\x81" * (MAX_ENVELOPE_BYTES + 10)])  # oversized envelope: dropped
        attacker.send_multipart(VALID[4])  # results from a peer that never registered: dropped
        attacker.close()
        too_big = keyed_dealer(context, executor)  # beyond max_message_bytes: zmq cuts the peer off
        too_big.send_multipart([b"x" * (5 << 20)])
        too_big.close()
        assert rt.run(total(*[inc(i) for i in range(500)])) == sum(range(1, 501))
        assert executor.pools == ["zmq-0"]
    assert sent >= 1000
    assert executor.dropped >= sent  # the well-formed ones came from a peer that never registered
    logged = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert 1 <= len(logged) <= 1 + executor.dropped // 1000, "a flood is logged once per peer, then counted"
    readable = [line for line in logged if re.search(r"from peer [0-9a-f]+ \(", line)]
    assert readable == logged, f"the peer is named readably: {logged[0]}"
