"""``parsl.tests``: only the ready-made configurations Parsl's own tests load."""

__all__: list[str] = []  # the names live in the submodules, as in the package this mirrors
