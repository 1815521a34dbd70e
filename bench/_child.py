"""One registry operation in a fresh process, so that its peak memory can be read alone.

    python bench/_child.py import                # only import modelreg: the baseline
    python bench/_child.py register HOME PATH    # register PATH in the registry at HOME
    python bench/_child.py pull HOME DEST        # pull that registration into DEST

The registry runs with its default settings (the caller clears ``MODELREG_*``). At the
end the process prints its peak resident memory in KiB: VmHWM from /proc/self/status.
getrusage's ru_maxrss is no use here: Linux carries the parent's peak over the exec
that started this process, so it would report the benchmark's own peak.
"""

from __future__ import annotations

import sys
from pathlib import Path

import modelreg

MODEL = "bench-memory"


def main(argv: list[str]) -> None:
    """Run the operation named by ``argv[0]``, then print the peak RSS in KiB."""
    if argv != ["import"]:
        run(argv)
    print(peak_kib())


def run(argv: list[str]) -> None:
    if len(argv) != 3 or argv[0] not in ("register", "pull"):
        raise SystemExit(__doc__)
    operation, home, path = argv
    with modelreg.connect(home=home) as reg:
        if operation == "register":
            reg.register(MODEL, path)
        else:
            reg.pull(f"{MODEL}@latest", path)


def peak_kib() -> int:
    """This process's peak resident set size (VmHWM), in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("VmHWM missing from /proc/self/status")


if __name__ == "__main__":
    main(sys.argv[1:])
