"""Who may talk to a ZMQExecutor: only pools holding this run's keys, loopback included.

The strangers here are real: raw zmq sockets speaking the registration protocol, a
process running as another user (uid 65534), and a process that binds the port of a
driver that was SIGKILLed.
"""

from __future__ import annotations

import logging
import os
import pickle
import select
import signal
import socket
import stat
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest
import zmq

import plait as pl
from plait.backends.zmq._blocks import pool_command
from plait.backends.zmq._curve import Keys
from plait.backends.zmq._frames import MessageTooBig, join, split
from plait.backends.zmq._protocol import (
    PROTOCOL_VERSION,
    Refuse,
    Register,
    ResultRow,
    Results,
    TaskRow,
    Tasks,
    decode,
    encode,
    python_version,
)
from tests.backends.zmq.zmq_apps import FAST, big, inc, length, total
from tests.processes import gone

OURS = {"protocol": PROTOCOL_VERSION, "plait": pl.__version__, "python": python_version()}
REGISTER = encode(Register(**OURS, capacity=1, host="x", pool="x", pid=1))
NOBODY = 65534


class Touch:
    """Creates ``path`` when unpickled: proof that a stranger's pickle was loaded."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return open, (self.path, "w")


def test_every_address_is_encrypted_unless_explicitly_opted_out() -> None:
    for address in ("127.0.0.1", "localhost", "192.0.2.7"):
        assert pl.ZMQExecutor(address=address).encrypted
    assert not pl.ZMQExecutor(encrypted=False).encrypted
    with pytest.raises(TypeError, match="encrypted=None must be True or False"):
        pl.ZMQExecutor(encrypted=None)  # type: ignore[arg-type]  # what "unless loopback" was spelled


@pytest.mark.parametrize("address", ["url", "pools_url"])  # TCP, and this host's pools' unix socket
def test_a_stranger_on_loopback_gets_no_answer_and_cannot_have_a_pickle_loaded(
    address: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    marker = tmp_path / "loaded"
    executor = pl.ZMQExecutor(provider=pl.LocalProvider(workers=2), **FAST)  # the default: loopback
    with pl.Runtime([executor]) as rt, zmq.Context() as context:
        assert rt.run(total(*[inc(i) for i in range(20)])) == sum(range(1, 21))
        assert executor.keys is not None
        plain = context.socket(zmq.DEALER)  # no Curve at all
        wrong = context.socket(zmq.DEALER)  # knows the server's public key, not our client key
        other = Keys.generate()
        wrong.curve_serverkey = executor.keys.server_public
        wrong.curve_publickey, wrong.curve_secretkey = other.client_public, other.client_secret
        touch = pickle.dumps(Touch(marker))
        result = encode(Results([ResultRow(0, True, 0.0, 1.0, None, None, len(touch), "w")]), [touch])
        for stranger in (plain, wrong):
            stranger.linger = 0
            stranger.connect(getattr(executor, address))
            stranger.send_multipart(REGISTER)
            stranger.send_multipart(result)
        assert rt.run(inc(100)) == 101  # the real pool still works meanwhile
        for stranger in (plain, wrong):
            assert not stranger.poll(1000), "a peer without the keys got an answer"
            stranger.close()
        assert executor.pools == ["zmq-0"]
        assert executor.dropped == 0, "nothing from the strangers reached the executor"
        pool = psutil.Process(int(executor.blocks.jobs["zmq-0"]))  # type: ignore[union-attr]
        secrets = [executor.keys.client_secret.decode(), executor.keys.server_secret.decode()]
        seen = " ".join([*pool.cmdline(), *pool.environ().values(), caplog.text])
        assert not [s for s in secrets if s in seen], "a key is in the pool's argv, its environment or a log"
        assert executor.key_file is not None and str(executor.key_file) in pool.cmdline()
        assert stat.S_IMODE(executor.key_file.stat().st_mode) == 0o600
    assert not marker.exists(), "the driver unpickled a stranger's result"
    assert not executor.key_file.exists(), "the key file outlived the run"


def as_nobody(key_file: Path, url: str) -> str:
    """In a forked child that became uid 65534: what it got from the key file and the executor."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: only os calls and a fresh zmq context, then _exit
        try:
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            try:
                key_file.read_bytes()
                said = "read the keys "
            except PermissionError:
                said = ""
            with zmq.Context() as context, context.socket(zmq.DEALER) as socket:
                socket.linger = 0
                socket.connect(url)
                socket.send_multipart(REGISTER)
                said += "answered" if socket.poll(1500) else "silence"
            os.write(write, said.encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as said:
        if not select.select([said], [], [], 30)[0]:  # never hang the suite on a stuck child
            os.kill(pid, signal.SIGKILL)
        answer = said.read()
    os.waitpid(pid, 0)
    return answer


@pytest.mark.skipif(os.geteuid() != 0, reason="becoming another user needs root (CI runs as root)")
def test_another_user_can_neither_read_the_keys_nor_register() -> None:
    executor = pl.ZMQExecutor(provider=pl.LocalProvider(workers=1), **FAST)
    with pl.Runtime([executor]) as rt:
        assert executor.key_file is not None
        assert as_nobody(executor.key_file, executor.url) == "silence"
        assert executor.pools_url.startswith("ipc://")
        assert as_nobody(executor.key_file, executor.pools_url) == "silence"
        assert rt.run(inc(1)) == 2
        assert executor.pools == ["zmq-0"]


def test_a_refused_peer_is_not_told_which_versions_to_send() -> None:
    executor = pl.ZMQExecutor(provider=pl.LocalProvider(workers=1, init_blocks=0), encrypted=False, **FAST)
    with pl.Runtime([executor]), zmq.Context() as context:
        peer = context.socket(zmq.DEALER)
        peer.linger = 0
        peer.connect(executor.url)
        peer.send_multipart(encode(Register(**{**OURS, "protocol": 99}, capacity=1, host="x", pool="x", pid=1)))
        assert peer.poll(5000)
        refusal, _ = decode(peer.recv_multipart())
        assert isinstance(refusal, Refuse)
        reason = refusal.reason
        peer.close()
    assert "refused" in reason
    assert not [v for v in (pl.__version__, python_version(), "protocol") if v in reason], reason


ORPHANING_DRIVER = """
import time
import plait as pl
from tests.backends.zmq.zmq_apps import FAST, inc
executor = pl.ZMQExecutor(provider=pl.LocalProvider(workers=1), **FAST)
runtime = pl.Runtime([executor]).start()
assert runtime.run(inc(1)) == 2
print(executor.port, executor.blocks.jobs["zmq-0"], flush=True)
time.sleep(120)
"""


def test_an_orphaned_pool_runs_nothing_for_whoever_takes_its_port_and_exits(tmp_path: Path) -> None:
    marker = tmp_path / "hijacked"
    argv = [sys.executable, "-c", textwrap.dedent(ORPHANING_DRIVER)]
    driver = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    try:
        assert driver.stdout is not None
        port, pool_pid = map(int, driver.stdout.readline().split())
    finally:
        driver.kill()  # the pool is in its own session: it stays, an orphan
        driver.wait()
    with zmq.Context() as context:
        hijacker = context.socket(zmq.ROUTER)  # no keys: anyone on this host could do this
        hijacker.linger = 0
        hijacker.bind(f"tcp://127.0.0.1:{port}")
        fn, call = pickle.dumps(Touch(marker)), pickle.dumps(((), {}))
        tasks = encode(Tasks([TaskRow(1, "evil", b"k", None, len(fn), len(call))]), [fn, call])
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not marker.exists() and not gone(pool_pid, within=0.1):
            if hijacker.poll(0):
                identity, *_ = hijacker.recv_multipart()
                hijacker.send_multipart([identity, *tasks])
        hijacker.close()
    exited = gone(pool_pid, within=5)
    if not exited:  # not ours to leave running, whatever the test finds
        os.killpg(pool_pid, signal.SIGKILL)
    assert not marker.exists(), "the orphaned pool ran a task from the process that took its port"
    assert exited, "the orphaned pool did not exit"


def test_a_pool_with_the_wrong_server_key_exits_at_once() -> None:
    executor = pl.ZMQExecutor(provider=pl.LocalProvider(workers=1), **FAST)
    with pl.Runtime([executor]) as rt:
        assert rt.run(inc(1)) == 2
        assert executor.key_file is not None
        other = Keys.generate().write_client_file(executor.key_file.parent)
        try:
            argv = pool_command(executor.url, "stranger", 1, other)
            started = time.monotonic()
            done = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=30)
        finally:
            other.unlink()
        assert done.returncode == 4, done.stderr
        assert "not this run's executor" in done.stderr
        assert time.monotonic() - started < 10
        assert executor.pools == ["zmq-0"]


def bytes_taken_before_cut_off(port: int, mechanism: bytes, declared: int = 64 << 20) -> int:
    """Speak ZMTP 3.0 by hand: a greeting offering ``mechanism``, then one frame of
    ``declared`` bytes; how many of them the executor read before it hung up."""
    greeting = b"\xff" + bytes(8) + b"\x7f" + b"\x03\x00" + mechanism.ljust(20, b"\x00") + bytes(32)
    chunk, sent = bytes(1 << 20), 0
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        try:
            raw.sendall(greeting)
            raw.sendall(b"\x06" + struct.pack(">Q", declared))  # a long command frame
            while sent < declared:
                raw.sendall(chunk)
                sent += len(chunk)
        except OSError:  # reset, or a full buffer nobody reads: cut off either way
            pass
    return sent


def test_a_stranger_cannot_make_the_driver_hold_more_than_a_frame() -> None:
    executor = pl.ZMQExecutor(provider=pl.LocalProvider(workers=1), **FAST)
    with pl.Runtime([executor]) as rt:
        for mechanism in (b"NULL", b"CURVE"):  # whichever the executor speaks, and the other
            assert bytes_taken_before_cut_off(executor.port, mechanism) < 16 << 20, mechanism
        assert executor.dropped == 0
        assert rt.run(big(3 << 20)) == bytes(3 << 20), "a result bigger than a frame travels in pieces"
        assert rt.run(length(big(3 << 20))) == 3 << 20, "and so does an argument"


def test_pieces_join_only_up_to_max_message_bytes() -> None:
    frames = [bytes(frame) for frame in split([b"envelope", bytes(5000)], limit=1000)]
    assert join(frames, limit=5000) == [b"envelope", bytes(5000)]
    with pytest.raises(MessageTooBig, match="a frame of 5000 bytes, more than max_message_bytes=4999"):
        join(frames, limit=4999)


def test_a_pool_without_a_readable_key_file_says_so_and_exits(tmp_path: Path) -> None:
    argv = pool_command("tcp://127.0.0.1:9", "keyless", 1, tmp_path / "missing.keys")
    done = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert f"cannot read the executor's keys from {tmp_path / 'missing.keys'}" in done.stderr
