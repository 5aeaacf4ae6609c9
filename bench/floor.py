#!/usr/bin/env python3
"""The floor: the least any ps_mem must do.

List /proc and read every /proc/PID/smaps_rollup once (open and read,
errors ignored), nothing else.  The kernel's work to build smaps_rollup is
most of a ps_mem run on a busy machine; timing this bare loop, started as a
fresh interpreter like ps_mem itself, gives the wall time no ps_mem written
in Python can beat.

`floor.py smaps` reads every full /proc/PID/smaps instead: the floor of
`--group-by mapping` (and of smem2 -m), which need every mapping's lines.
"""

import os
import sys


def main() -> None:
    name = "/" + (sys.argv[1] if len(sys.argv) > 1 else "smaps_rollup")
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/" + entry + name, "rb") as handle:
                    handle.read()
            except OSError:
                pass


if __name__ == "__main__":
    main()
