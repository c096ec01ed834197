"""The search's second stage: edge mutants of the front's DAGs (`cnas search --mutate N`)."""

from __future__ import annotations

import json

import networkx as nx
import numpy as np
import pandas as pd
import pytest

import concurrent_nas as cnas
from concurrent_nas import dag as dagmod
from concurrent_nas.cli.main import main
from concurrent_nas.predict import predict_latency
from concurrent_nas.rundir import load_architectures
from concurrent_nas.search.mutate import MUTANT_ATTR, addable_edges, mutate_edges, removable_edges, trial_dag
from concurrent_nas.search.space import space_from_settings
from concurrent_nas.shapes import count_params

DIAMOND = [(0, 1), (0, 2), (1, 3), (2, 3)]


def small_space():
    return space_from_settings(["nodes=12:20:4", "stem_channels=8", "channel_cap=32"],
                               cnas.CompileSettings(image_size=16))


def replay(edges, changes) -> set:
    """The edge set ``changes`` ("+u>v", "-u>v") make of ``edges``."""
    edges = set(edges)
    for change in changes:
        u, v = map(int, change[1:].split(">"))
        edges = edges | {(u, v)} if change[0] == "+" else edges - {(u, v)}
    return edges


def test_diamond_moves_by_hand():
    diamond = nx.DiGraph(DIAMOND)
    # Adding: only 1 -> 2 (0 -> 3 would wire the stem to the classifier); removing: none,
    # each edge is the last out of or into one of its ends.
    assert addable_edges(diamond) == [(1, 2)] and removable_edges(diamond) == []
    child, changes = mutate_edges(diamond, np.random.default_rng(0), moves=2)
    # Then 0 -> 2, 1 -> 2 and 1 -> 3 have a twin path, so the second move removes one.
    assert changes[0] == "+1>2" and changes[1] in {"-0>2", "-1>2", "-1>3"}
    assert set(child.edges) == replay(DIAMOND, changes)
    assert sorted(diamond.edges) == DIAMOND  # the parent is left alone
    chain, none = mutate_edges(nx.DiGraph([(0, 1)]), np.random.default_rng(0), moves=3)
    assert none == [] and list(chain.edges) == [(0, 1)]


@pytest.mark.parametrize("generator", ["er", "ba", "ws", "dp", "fb"])
def test_mutants_stay_architectures(generator):
    for seed in range(4):
        parent = cnas.generate(generator, 20, seed)
        for moves in (1, 3):
            child, changes = mutate_edges(parent, np.random.default_rng(seed), moves)
            again, _ = mutate_edges(parent, np.random.default_rng(seed), moves)
            assert sorted(again.edges) == sorted(child.edges)  # same generator state, same mutant
            dagmod.validate(child)  # acyclic, one source, one sink
            assert set(child) == set(parent) and len(changes) == moves
            assert dagmod.input_vertex(child) == dagmod.input_vertex(parent)
            assert dagmod.output_vertex(child) == dagmod.output_vertex(parent)
            assert set(child.edges) == replay(parent.edges, changes)
            assert dagmod.stage_vertices(child) == dagmod.stage_vertices(parent)


def test_search_with_a_mutation_stage(tmp_path):
    out, space = tmp_path / "s", small_space()
    result = cnas.search(space, ("latency", "params"), 6, out=out, units=4, population=4, mutate=4)
    trials = result.trials
    mutants = trials[trials["mutated_from"].notna()]
    assert len(trials) == 10 and len(mutants) == 4 and result.ran == 10
    study = {t.number: t for t in result.study.trials}
    for row in mutants.itertuples():
        parent, child = study[int(row.mutated_from)], study[row.trial]
        parent_dag = trial_dag(space, parent.params, parent.user_attrs.get(MUTANT_ATTR))
        child_dag = trial_dag(space, child.params, child.user_attrs[MUTANT_ATTR])
        assert set(child_dag.edges) == replay(parent_dag.edges, row.mutation.split())
        # Evaluated like any trial: the same objectives on the mutant's own DAG.
        settings = space.candidate(child.params).settings
        if row.feasible:
            assert row.latency == pytest.approx(predict_latency(child_dag, 4, "multicore", settings=settings).pred_latency_ms)
            assert row.params == count_params(child_dag, settings)
    # The front run holds a mutant's own edges; readers rebuild it from them.
    table = pd.read_parquet(result.front_run / "architectures.parquet")
    archs = {a: d for a, _, d in load_architectures(result.front_run)}
    for row in table.itertuples():
        t = study[row.arch_id]
        assert sorted(archs[row.arch_id].edges) == sorted(trial_dag(space, t.params, t.user_attrs.get(MUTANT_ATTR)).edges)
        assert row.mutated_from == t.user_attrs.get(MUTANT_ATTR, {}).get("parent", -1)
    # --trials counts the sampled trials only, --mutate the mutants: both resume.
    again = cnas.search(space, ("latency", "params"), 6, out=out, units=4, population=4, mutate=4)
    assert again.ran == 0
    more = cnas.search(space, ("latency", "params"), 7, out=out, units=4, population=4, mutate=6)
    assert more.ran == 3 and more.trials["mutated_from"].notna().sum() == 6
    pd.testing.assert_frame_equal(more.trials.iloc[:10][["key", "latency"]], trials[["key", "latency"]])


def test_cli_mutate_flag(tmp_path, capsys):
    out = tmp_path / "s"
    argv = ["search", "--out-dir", str(out), "--trials", "4", "--set", "nodes=12", "--set", "stem_channels=8",
            "--set", "channel_cap=32", "--image-size", "16", "--objectives", "latency,params", "--units", "2",
            "--population", "4"]
    assert main([*argv, "--mutate", "-1"]) == 2
    assert "--mutate must be a non-negative integer" in capsys.readouterr().err and not out.exists()
    assert main([*argv, "--mutate", "2", "--mutate-moves", "1"]) == 0
    assert "Second stage: 2 edge mutants" in (out / "summary.md").read_text()
    changes = pd.read_parquet(out / "trials.parquet")["mutation"].dropna()
    assert len(changes) == 2 and all(len(c.split()) == 1 for c in changes)
    assert "mutated_from >= 0" in json.loads((out / "front" / "manifest.json").read_text())["arch_seeds"]
