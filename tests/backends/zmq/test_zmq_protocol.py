"""The wire: envelopes decode or raise ProtocolError, and the executor survives any bytes."""

from __future__ import annotations

import logging

import msgpack
import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import plait as pl
from plait.backends.zmq._protocol import _FIELDS, MAX_ENVELOPE_BYTES, ProtocolError, decode, encode
from tests.backends.zmq.zmq_apps import FAST, inc, keyed_dealer, total

VALID = [
    encode("register", protocol=1, plait="0.1.0", python="3.11", capacity=2, host="h", pool="p", pid=1),
    encode("results", [b"payload"], results=[[1, True, 0.0, 1.0, "w", 0.5, 1024]]),
    encode("tasks", [b"fn", b"call"], tasks=[[1, "f", b"key", True, None]]),
    encode("heartbeat"),
    encode("drained"),
]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(), st.text(max_size=8))
msgpack_values = st.recursive(
    scalars | st.binary(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
envelopes = st.one_of(
    st.binary(max_size=64),
    msgpack_values.map(lambda v: msgpack.packb(v)),
    st.dictionaries(st.sampled_from(["type", "results", "tasks", "ids", "pool"]), msgpack_values).map(msgpack.packb),
    st.sampled_from(VALID).flatmap(lambda frames: st.integers(0, len(frames[0]) - 1).map(lambda n: frames[0][:n])),
)
payloads = st.lists(st.binary(max_size=16), max_size=3)
random_messages = st.lists(envelopes, min_size=1, max_size=1).flatmap(lambda first: payloads.map(first.__add__))
# Known message types: a well-formed envelope with any number of frames, and envelopes
# whose fields (and the cells of their rows) have random values.
field_names = sorted({name for fields in _FIELDS.values() for name in fields} | {"samples"})
rows = st.lists(msgpack_values, min_size=5, max_size=7)
field_values = msgpack_values | st.lists(rows, max_size=3) | st.floats() | st.integers(-2, 2)
# At least one frame: VALID's register as it is would register the fuzzer as a pool.
wrong_frames = st.sampled_from(VALID).flatmap(
    lambda frames: st.lists(st.binary(max_size=16), min_size=1, max_size=3).map(lambda rest: [frames[0], *rest])
)
wrong_fields = st.builds(
    lambda type_, fields, rest: encode(type_, rest, **fields),
    st.sampled_from(sorted(_FIELDS)),
    st.dictionaries(st.sampled_from(field_names), field_values, max_size=4),
    payloads,
)
messages = st.one_of(random_messages, wrong_frames, wrong_fields)


@given(messages)
def test_decoding_any_bytes_gives_a_message_or_a_protocol_error(frames: list[bytes]) -> None:
    try:
        message = decode(frames)
    except ProtocolError:
        return
    assert encode(message.type, message.payloads, **message.fields)[1:] == list(message.payloads)


@pytest.mark.parametrize(
    "frames",
    [
        encode("heartbeat", [b"x"]),
        encode("drained", [b"x", b"y"]),
        encode("results", results=[[1, True, 0.0, 1.0, "w", None, None]]),
        encode("results", [b"x"], results=[[1, True, float("nan"), 1.0, "w", None, None]]),
        encode("results", [b"x"], results=[[1, True, 0.0, float("inf"), "w", None, None]]),
        encode("tasks", [b"call"], tasks=[[1, "f", b"key", "no", None]]),
        encode("cancel", ids="not a list"),
        encode("register", protocol="1", plait="0.1.0", python="3.11", capacity=2, host="h", pool="p", pid=1),
    ],
)
def test_a_known_type_with_wrong_frames_or_fields_is_a_protocol_error(frames: list[bytes]) -> None:
    with pytest.raises(ProtocolError):
        decode(frames)


def test_an_oversized_envelope_is_refused_before_it_is_parsed() -> None:
    with pytest.raises(ProtocolError, match="more than"):
        decode([b"\x00" * (MAX_ENVELOPE_BYTES + 1)])


def test_the_executor_drops_thousands_of_bad_messages_and_keeps_serving(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="plait.zmq")
    executor = pl.ZMQExecutor(provider=pl.LocalProvider(workers=2), max_message_bytes=4 << 20, **FAST)
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
        attacker.send_multipart(VALID[1])  # results from a peer that never registered: dropped
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
