"""CurveZMQ for one run: fresh keys, the server side with its allow-list, the client side.

The executor makes a server key pair and one client key pair per run and hands the
client pair and the server's public key to pools in their environment. A peer
without the server's public key cannot finish the handshake; one with another client
key is refused by the authenticator, so it can neither register nor receive tasks.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

import attrs
import zmq
from zmq.auth.thread import ThreadAuthenticator

__all__ = ["CLIENT_PUBLIC", "CLIENT_SECRET", "SERVER_PUBLIC", "Keys", "configure_client", "configure_server"]

SERVER_PUBLIC = "PLAIT_ZMQ_SERVER_KEY"
CLIENT_PUBLIC = "PLAIT_ZMQ_PUBLIC_KEY"
CLIENT_SECRET = "PLAIT_ZMQ_SECRET_KEY"

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
        return cls(*zmq.curve_keypair(), *zmq.curve_keypair())

    def client_env(self) -> dict[str, str]:
        """What a pool needs in its environment to connect."""
        return {
            SERVER_PUBLIC: self.server_public.decode(),
            CLIENT_PUBLIC: self.client_public.decode(),
            CLIENT_SECRET: self.client_secret.decode(),
        }


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
    authenticator = ThreadAuthenticator(context, log=log)
    authenticator.start()
    authenticator.configure_curve_callback("*", credentials_provider=_OnlyOurClient(keys.client_public))
    socket.curve_secretkey = keys.server_secret
    socket.curve_publickey = keys.server_public
    socket.curve_server = True
    return authenticator


def configure_client(socket: zmq.Socket[bytes], env: Mapping[str, str] = os.environ) -> bool:
    """Make ``socket`` a Curve client if ``env`` holds the keys; whether it did."""
    if SERVER_PUBLIC not in env:
        return False
    socket.curve_serverkey = env[SERVER_PUBLIC].encode()
    socket.curve_publickey = env[CLIENT_PUBLIC].encode()
    socket.curve_secretkey = env[CLIENT_SECRET].encode()
    return True
