"""``python -m plait``: the plait command, for an environment whose scripts are not on PATH."""

from plait.cli import main

main(prog_name="plait")
