"""With none of the options added since 3.14, the output is 3.14's byte for
byte (stdout, stderr, exit status); and the new options at their defaults
(`--sort ram`, `--group-by program`) change nothing.  A small sample of the
trees: test_differential.py runs the whole matrix."""

import pytest

from tests.harness import REFERENCE_DIR, run_ours, run_reference

pytestmark = pytest.mark.skipif(not (REFERENCE_DIR / "ps_mem.py").exists(),
                                reason="ps_mem 3.14 is not installed in %s" % REFERENCE_DIR)

CASES = [
    ("rollup_6_1", []), ("rollup_6_1", ["-S"]), ("rollup_6_1", ["-s", "-d"]),
    ("rollup_6_1", ["-t"]),
    ("smaps_no_pss", []), ("smaps_no_pss", ["-S", "-t"]),
    ("swap_without_swappss", ["-S"]),
    ("statm_2_6_9", []), ("kernel_2_4_rmap", ["-d"]),
    ("clone_vm", []), ("ties", []), ("exe_prelinked", []),
]


@pytest.mark.parametrize("name, options", CASES,
                         ids=["%s:%s" % (name, " ".join(options)) for name, options in CASES])
def test_same_bytes_as_3_14(proc_trees, name, options):
    root = proc_trees.get(name).root
    ours = run_ours(*options, procfs=root)
    assert ours == run_reference(*options, procfs=root)
    # The new options, given at their defaults, are no options at all.
    assert run_ours("--sort", "ram", "--group-by", "program", *options, procfs=root) == ours


def test_watch_same_bytes_as_3_14(proc_trees):
    root = proc_trees.get("smaps_no_pss").root
    options = ["-w", "1", "-p", "99999"]
    assert run_ours(*options, procfs=root) == run_reference(*options, procfs=root)
