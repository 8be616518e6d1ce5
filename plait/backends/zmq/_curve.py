"""CurveZMQ for one run: fresh keys, the file that carries the pool's half, both sides' sockets.

The executor makes a server key pair and one client key pair per run. A pool gets the
server's public key and the client pair from a key file only its owner can read (its
path, never its content, travels in the pool's command line), or on its stdin (``-``
for the file: how SSHProvider hands it over, leaving no file on the host). A peer without the
server's public key cannot finish the handshake; one with another client key is
refused by the authenticator: neither can register, send a byte the executor reads, or
receive a task. A pool knows the server's key, so nothing else bound to the executor's
address can finish a handshake with it either.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
import zmq

if TYPE_CHECKING:  # the executor's side only: it imports asyncio, which a pool need not start with
    from zmq.auth.thread import ThreadAuthenticator

__all__ = ["Keys", "configure_client", "configure_server", "read_keys", "remove_key_file", "write_key_file"]

log = logging.getLogger("plait.zmq")


@attrs.frozen
class Keys:
    """The key pairs of one run (Z85 text, as ``zmq.curve_keypair`` makes them)."""

    server_public: bytes
    server_secret: bytes
    client_public: bytes
    client_secret: bytes

    @classmethod
    def generate(cls) -> Keys:
        if not zmq.has("curve"):
            raise RuntimeError("this pyzmq's libzmq has no CurveZMQ: pools could not authenticate")
        return cls(*zmq.curve_keypair(), *zmq.curve_keypair())

    def write_client_file(self, directory: Path, name: str | None = None) -> Path:
        """A new file in ``directory`` (called ``name``, if given) with what a pool needs to
        connect; only its owner may read it.

        ``mkstemp`` creates it with O_EXCL and mode 0600 in one call: it is never, even
        for a moment, readable by others, whatever the umask. A ``name`` is then given by
        renaming, which replaces a file of that name whole (a previous run's keys).
        """
        import tempfile  # the executor's side: a pool only reads the file (read_keys)

        directory.mkdir(parents=True, exist_ok=True)
        fd, written = tempfile.mkstemp(prefix="plait-", suffix=".keys", dir=directory)
        with os.fdopen(fd, "w") as file:
            json.dump(
                {
                    "server_public": self.server_public.decode(),
                    "client_public": self.client_public.decode(),
                    "client_secret": self.client_secret.decode(),
                },
                file,
            )
        if name is None:
            return Path(written)
        os.replace(written, directory / name)
        return directory / name


def write_key_file(keys: Keys, chosen: Path | None, job_dir: Path | None) -> tuple[Path, Path | None]:
    """Write the pools' half of ``keys`` where pools can read it: at ``chosen``, else in a
    batch provider's ``job_dir`` (shared with the compute nodes), else in a new private
    directory. Returns the file, and the directory made for it (to remove with it)."""
    if chosen is not None:
        return keys.write_client_file(chosen.parent, chosen.name), None
    if job_dir is not None:
        return keys.write_client_file(job_dir), None
    import tempfile  # the executor's side: see write_client_file

    made = Path(tempfile.mkdtemp(prefix="plait-zmq-"))
    return keys.write_client_file(made), made


def remove_key_file(path: Path | None, directory: Path | None) -> None:
    """Remove what ``write_key_file`` wrote (``directory``: the one it made)."""
    if path is not None:
        path.unlink(missing_ok=True)
    if directory is not None:
        import shutil  # the executor's side: see write_client_file

        shutil.rmtree(directory, ignore_errors=True)


def read_keys(path: Path) -> dict[str, bytes]:
    """The keys in a file ``write_client_file`` wrote (``-``: on stdin, to its end), or a
    ValueError naming the file."""
    try:
        keys = json.loads(sys.stdin.read() if str(path) == "-" else path.read_text())
        return {name: keys[name].encode() for name in ("server_public", "client_public", "client_secret")}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"cannot read the executor's keys from {path}: {error}") from None


class _OnlyOurClient:
    def __init__(self, public: bytes) -> None:
        self.public = public  # Z85, as the authenticator hands keys to callbacks

    def callback(self, domain: str, key: bytes) -> bool:
        if key == self.public:
            return True
        log.warning("refused a connection with an unknown CurveZMQ client key")
        return False


def configure_server(
    context: zmq.Context[zmq.Socket[bytes]], socket: zmq.Socket[bytes], keys: Keys
) -> ThreadAuthenticator:
    """Make ``socket`` a Curve server that lets in only ``keys``' client; returns the
    authenticator, to stop with the socket."""
    from zmq.auth.thread import ThreadAuthenticator

    authenticator = ThreadAuthenticator(context, log=log)
    authenticator.start()
    authenticator.configure_curve_callback("*", credentials_provider=_OnlyOurClient(keys.client_public))
    socket.curve_secretkey = keys.server_secret
    socket.curve_publickey = keys.server_public
    socket.curve_server = True
    return authenticator


def configure_client(socket: zmq.Socket[bytes], keys: dict[str, bytes]) -> None:
    """Make ``socket`` a Curve client that talks only to the server whose key ``keys`` pins."""
    socket.curve_serverkey = keys["server_public"]
    socket.curve_publickey = keys["client_public"]
    socket.curve_secretkey = keys["client_secret"]
