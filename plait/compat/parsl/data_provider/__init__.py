"""``parsl.data_provider``: files."""

__all__: list[str] = []  # the names live in the submodules, as in the package this mirrors
