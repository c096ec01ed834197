"""The shipped KaHyPar presets: parse, every key known, and kahypar accepts them.

kahypar 1.3.7 ends the whole process (exit 255) on a missing or unknown key, so the
loading check runs in a child process: a bad preset fails this test instead of
killing pytest.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from concurrent_nas.errors import CnasError
from concurrent_nas.scoring.partition import PRESET_KEYS, PRESETS, check_preset, preset_path, read_preset


@pytest.mark.parametrize("name", PRESETS)
def test_preset_parses_and_sets_exactly_the_known_keys(name):
    values = read_preset(preset_path(name))
    assert set(values) == PRESET_KEYS
    assert values["objective"] == "km1" and values["mode"] == "direct"
    for key in ("c-s", "c-t", "i-runs", "r-fm-stop-i", "cmaxnet"):
        int(values[key])  # numeric keys hold numbers
    for key in ("p-use-sparsifier", "p-detect-communities", "r-hfc-mbc"):
        assert values[key] in {"true", "false"}


def test_fast_preset_differs_only_in_contraction_limit_initial_partitioning_and_communities():
    fast, quality = read_preset(preset_path("fast")), read_preset(preset_path("quality"))
    assert {k for k in fast if fast[k] != quality[k]} == {
        "c-t", "i-runs", "p-detect-communities", "p-detect-communities-in-ip",
        "c-rating-use-communities", "i-c-rating-use-communities",
    }
    assert (int(fast["i-runs"]), int(quality["i-runs"])) == (1, 20)
    assert (int(fast["c-t"]), int(quality["c-t"])) == (3, 160)


def test_check_preset_rejects_unknown_and_missing_keys():
    values = read_preset(preset_path("fast"))
    with pytest.raises(CnasError, match="unknown KaHyPar key 'i-runz'"):
        check_preset({**values, "i-runz": "3"})
    del values["c-t"]
    with pytest.raises(CnasError, match="missing KaHyPar key 'c-t'"):
        check_preset(values)


def test_read_preset_reports_malformed_lines(tmp_path):
    bad = tmp_path / "bad.ini"
    bad.write_text("mode=direct\nthis is not a key value line\n")
    with pytest.raises(CnasError, match="bad.ini:2: expected key=value"):
        read_preset(bad)


@pytest.mark.parametrize("name", PRESETS)
def test_kahypar_loads_the_preset_and_partitions_in_a_child_process(name):
    code = textwrap.dedent(
        f"""
        import kahypar
        from concurrent_nas.scoring.partition import preset_path
        # two triangles joined by one hyperedge: the best bisection cuts only that one
        h = kahypar.Hypergraph(6, 3, [0, 3, 6, 8], [0, 1, 2, 3, 4, 5, 2, 3], 2, [5, 5, 1], [1] * 6)
        c = kahypar.Context()
        c.loadINIconfiguration(preset_path({name!r}))
        c.setK(2); c.setEpsilon(0.03); c.setSeed(0); c.suppressOutput(True)
        kahypar.partition(h, c)
        print([h.blockID(i) for i in range(6)])
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-2000:]
    parts = eval(done.stdout.strip().splitlines()[-1])
    assert parts[0] == parts[1] == parts[2] != parts[3] == parts[4] == parts[5]
    assert len(done.stdout) < 200  # suppressOutput: nothing but our line


def test_a_reused_context_gives_what_a_fresh_one_gives_and_never_prompts():
    # In a child with stdin closed and a time limit: a prompt would hang or end it.
    code = textwrap.dedent(
        """
        import random
        import kahypar
        from concurrent_nas import generate
        from concurrent_nas.scoring import build_hypergraph
        from concurrent_nas.scoring.partition import (
            KahyparInput, block_limits, kahypar_parts, preset_path,
        )

        def fresh(hg, k, eps):
            a = KahyparInput.of(hg)
            h = kahypar.Hypergraph(hg.num_vertices, hg.num_hyperedges, a.index_vector, a.edge_vector,
                                   k, a.edge_weights, a.vertex_weights)
            c = kahypar.Context()
            c.loadINIconfiguration(preset_path("fast"))
            c.suppressOutput(True)
            c.setCustomTargetBlockWeights(block_limits(a.vertex_weights, k, eps))
            c.setK(k); c.setEpsilon(eps); c.setSeed(0)
            kahypar.partition(h, c)
            return [h.blockID(i) for i in range(hg.num_vertices)]

        cases = [(build_hypergraph(generate(g, n, 5, index=i)), k, eps)
                 for g in ("er", "dp", "fb") for n in (20, 40) for i in range(2)
                 for k in (2, 4, 8) for eps in (0.03, 0.3)]
        random.Random(1).shuffle(cases)  # a different history before every call
        # KaHyPar's own partitions (before rebalance): what the context reuse could change.
        same = sum(kahypar_parts(hg, k, eps, preset="fast") == fresh(hg, k, eps) for hg, k, eps in cases)
        print(same, len(cases))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-2000:]
    same, total = map(int, done.stdout.split())
    assert total == 72 and same == total
    assert "(Y/N)" not in done.stdout + done.stderr


def test_block_limits_are_kahypars_own_bound():
    from concurrent_nas.scoring.partition import block_limits

    # total 10 over 3 blocks: ceil(10 / 3) = 4, (1 + 0.5) * 4 = 6
    assert block_limits([1, 2, 3, 4], 3, 0.5) == [6, 6, 6]
    assert block_limits([5, 5], 2, 0.03) == [5, 5]
