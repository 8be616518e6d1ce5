"""Ready-made configurations, as ``parsl.tests.configs`` names them."""

__all__: list[str] = []  # the names live in the submodules, as in the package this mirrors
