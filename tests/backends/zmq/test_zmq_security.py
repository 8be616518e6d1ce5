"""CurveZMQ: on by default beyond loopback; a peer without this run's keys gets nowhere."""

from __future__ import annotations

import zmq

import plait as pl
from plait.backends.zmq._curve import Keys
from plait.backends.zmq._protocol import encode, python_version
from tests.backends.zmq.zmq_apps import FAST, inc, total

OURS = {"protocol": 1, "plait": pl.__version__, "python": python_version()}
REGISTER = encode("register", **OURS, capacity=1, host="x", pool="x", pid=1)


def test_encryption_is_on_by_default_only_beyond_loopback() -> None:
    assert pl.ZMQExecutor(address="192.0.2.7").encrypted
    assert not pl.ZMQExecutor(address="127.0.0.1").encrypted
    assert not pl.ZMQExecutor(address="localhost").encrypted
    assert pl.ZMQExecutor(address="127.0.0.1", encrypted=True).encrypted


def test_pools_get_the_keys_through_the_provider_and_strangers_cannot_register() -> None:
    executor = pl.ZMQExecutor(provider=pl.LocalProvider(workers=2), encrypted=True, **FAST)
    with pl.Runtime([executor]) as rt, zmq.Context() as context:
        assert rt.run(total(*[inc(i) for i in range(50)])) == sum(range(1, 51))
        assert executor.keys is not None
        plain = context.socket(zmq.DEALER)  # no Curve at all
        wrong = context.socket(zmq.DEALER)  # knows the server's public key, not our client key
        other = Keys.generate()
        wrong.curve_serverkey = executor.keys.server_public
        wrong.curve_publickey, wrong.curve_secretkey = other.client_public, other.client_secret
        for stranger in (plain, wrong):
            stranger.linger = 0
            stranger.connect(executor.url)
            stranger.send_multipart(REGISTER)
        assert rt.run(inc(100)) == 101  # the real pool still works meanwhile
        for stranger in (plain, wrong):
            assert not stranger.poll(1000), "a peer without the key got an answer"
            stranger.close()
        assert executor.pools == ["zmq-0"]
        assert executor.dropped == 0, "nothing from the strangers reached the broker"
