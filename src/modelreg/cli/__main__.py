"""``python -m modelreg.cli``: the same entry point as the ``modelreg`` script."""

from modelreg.cli.app import main

main()
