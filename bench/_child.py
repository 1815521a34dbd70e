"""One registry operation in a fresh process, so that its peak memory can be read alone.

    python bench/_child.py import                # only import modelreg: the baseline
    python bench/_child.py register HOME PATH    # register PATH in the registry at HOME
    python bench/_child.py pull HOME DEST        # pull that registration into DEST

The registry runs with its default settings (the caller clears ``MODELREG_*``).
"""

from __future__ import annotations

import sys

import modelreg

MODEL = "bench-memory"


def main(argv: list[str]) -> None:
    """Run the operation named by ``argv[0]``."""
    if argv == ["import"]:
        return
    if len(argv) != 3 or argv[0] not in ("register", "pull"):
        raise SystemExit(__doc__)
    operation, home, path = argv
    with modelreg.connect(home=home) as reg:
        if operation == "register":
            reg.register(MODEL, path)
        else:
            reg.pull(f"{MODEL}@latest", path)


if __name__ == "__main__":
    main(sys.argv[1:])
