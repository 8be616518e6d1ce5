"""``parsl.app``: the app decorators, their futures and errors."""

__all__: list[str] = []  # the names live in the submodules, as in the package this mirrors
