"""Compatibility layers: other workflow systems' user-facing APIs, run on plait.

Each layer is built on plait's public API only (``plait``, ``plait.dsl``,
``plait.runtime``), never on its private modules, so plait's core does not know it exists.
"""

__all__: list[str] = []  # the layers are its subpackages
