"""``parsl.dataflow``: the loaded configuration, futures and dependency errors."""

__all__: list[str] = []  # the names live in the submodules, as in the package this mirrors
