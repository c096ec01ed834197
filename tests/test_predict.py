"""Predicted latency: hand-computed timelines of the placement search, and predict_latency."""

from __future__ import annotations

import networkx as nx
import pytest

from concurrent_nas import generate
from concurrent_nas.placement.search import (
    PlacementCosts,
    PlacementEvaluator,
    best_placement,
    heft_assignment,
    local_moves,
    upward_rank,
)
from concurrent_nas.placement.simulate import TransferModel
from concurrent_nas.predict import block_seconds, critical_path_s, load_profile, predict_latency

# input 0 -> {1, 2} -> output 3. Stem 1 s, branches 4 s each, output 1 s. Every message
# (image or feature map, 500 B) costs 0.5 s + 500 B / 1000 B/s = 1 s, no sender CPU.
DIAMOND = nx.DiGraph([(0, 1), (0, 2), (1, 3), (2, 3)])
COSTS = PlacementCosts({0: 1.0, 1: 4.0, 2: 4.0, 3: 1.0}, {v: 500 for v in range(4)}, 500,
                       TransferModel(0.5, 1000.0, 0.0))


def test_upward_rank_and_critical_path():
    # rank(3) = 1; rank(1) = rank(2) = 4 + 1 (message) + 1; rank(0) = 1 + 1 + 6.
    assert upward_rank(DIAMOND, COSTS) == {3: 1.0, 1: 6.0, 2: 6.0, 0: 8.0}
    assert critical_path_s(DIAMOND, COSTS.vertex_s) == 6.0


def test_heft_schedule_by_hand():
    # Unit 0: stem 0-1, vertex 1 1-5 (unit 1 would end at 6: image 1, stem 2, then 4).
    # Vertex 2: unit 0 free at 5 -> 9; unit 1: 2 + 4 = 6 -> unit 1. Output on unit 0 at
    # max(5, 6 + 1) = 7 -> 8.
    assert heft_assignment(DIAMOND, 2, COSTS) == {0: 0, 1: 0, 2: 1, 3: 0}
    assert PlacementEvaluator(DIAMOND, 2, COSTS).latency({0: 0, 1: 0, 2: 1, 3: 0}) == 8.0


def test_local_moves_by_hand():
    evaluator = PlacementEvaluator(DIAMOND, 2, COSTS)
    start = {0: 0, 1: 1, 2: 1, 3: 0}
    # Unit 1: image at 1, stem 1-2, vertex 1 2-6 (sent, at unit 0 at 7), vertex 2 6-10
    # (at unit 0 at 11); output 11-12.
    assert evaluator.latency(start) == 12.0
    best, seconds = local_moves(evaluator, start, budget=10)
    # First move tried: vertex 1 to its successor's unit 0 -> 8 s, kept. Then vertex 2 to
    # unit 0 (everything on one unit: 1 + 4 + 4 + 1 = 10 s) is worse; no move is left.
    assert (best, seconds) == ({0: 0, 1: 0, 2: 1, 3: 0}, 8.0)
    # Three distinct assignments simulated: the start (once, though asked twice) and two moves.
    assert evaluator.calls == 3


def test_local_moves_stop_at_the_budget():
    evaluator = PlacementEvaluator(DIAMOND, 2, COSTS)
    best, seconds = local_moves(evaluator, {0: 0, 1: 1, 2: 1, 3: 0}, budget=0)
    assert seconds == 12.0 and evaluator.calls == 1


def test_best_placement_keeps_the_fastest_candidate():
    name, assignment, seconds, scored = best_placement(DIAMOND, 2, COSTS, {"single": {v: 0 for v in range(4)}})
    assert (name, seconds) == ("heft", 8.0)
    assert scored == {"single": 10.0, "heft": 8.0}
    assert assignment == {0: 0, 1: 0, 2: 1, 3: 0}


def test_latency_placement_predicted_is_the_search_on_measured_times():
    from concurrent_nas.placement.timed import timed_assignment

    assignment = timed_assignment(DIAMOND, 2, "predicted", COSTS.vertex_s, COSTS.out_bytes, COSTS.image_bytes,
                                  COSTS.transfer)
    assert PlacementEvaluator(DIAMOND, 2, COSTS).latency(assignment) == 8.0


def test_hops_on_a_line_of_three_units():
    # Units 0 - 1 - 2 on a line: from unit 0 to unit 2 is two hops, 2 s a message.
    costs = PlacementCosts(COSTS.vertex_s, COSTS.out_bytes, COSTS.image_bytes, COSTS.transfer,
                           hops=lambda a, b: abs(a - b))
    evaluator = PlacementEvaluator(DIAMOND, 3, costs)
    # Vertex 2 on unit 2: image there at 2, stem 2-3, vertex 2 3-7, at unit 0 at 9; output 9-10.
    assert evaluator.latency({0: 0, 1: 0, 2: 2, 3: 0}) == 10.0
    assert evaluator.latency({0: 0, 1: 0, 2: 1, 3: 0}) == 8.0
    # HEFT sees the hops too and picks the neighbour.
    assert heft_assignment(DIAMOND, 3, costs)[2] == 1


def test_predict_latency_on_the_paper_profile():
    dag = generate("dp", 20, seed=3)
    p = predict_latency(dag, 4, "paper")
    vertex_s, _, _ = block_seconds(dag, load_profile("paper"))
    assert p.single_ms == pytest.approx(sum(vertex_s.values()) * 1e3)
    assert p.pred_latency_ms <= min(p.candidates_ms.values()) + 1e-9
    assert p.pred_speedup == pytest.approx(p.single_ms / p.pred_latency_ms)
    assert 1.0 <= p.pred_speedup <= p.cp_bound + 1e-9 and p.cp_ms <= p.single_ms
    assert set(p.candidates_ms) >= {"paper", "heft", "kahypar-eps0.03", "kahypar-eps0.5"}
    assert len(p.assignment) == dag.number_of_nodes() and p.assignment[-1] == 0
    assert predict_latency(dag, 4, "paper") == p  # reproducible
    one = predict_latency(dag, 1, "paper")
    assert one.pred_speedup == 1.0 and one.placement == "single"


def test_predict_scores_of_a_run(tmp_path):
    from concurrent_nas.cli.main import main
    from concurrent_nas.rundir import read_table

    run = tmp_path / "run"
    assert main(["sample", "--gen", "ws", "--n", "2", "--nodes", "12", "--out-dir", str(run)]) == 0
    assert main(["score", str(run), "--units", "2,3", "--profile", "paper", "--processes", "1"]) == 0
    table = read_table(run, "predicted.parquet", made_by="cnas score --profile")
    assert sorted(zip(table["arch_id"], table["units"])) == [(0, 2), (0, 3), (1, 2), (1, 3)]
    assert (table["pred_latency_ms"] <= table["kahypar_best_ms"] + 1e-9).all()
    assert (table["pred_latency_ms"] <= table["paper_ms"] + 1e-9).all()
    assert (table["profile"] == "paper").all()
