"""Placement without processes: assignments, plans, the simulator, in-process schedules."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

import concurrent_nas as cnas
from concurrent_nas.errors import CnasError
from concurrent_nas.placement import (
    IMAGE,
    Transfer,
    build_plan,
    make_assignment,
    normalize_assignment,
    paper_assignment,
    sequential_groups,
    single_assignment,
)
from concurrent_nas.placement.simulate import TransferModel, fit_transfer_model, simulate


def diamond_dag() -> nx.DiGraph:
    """0 -> two paths (1->2, 3->4) -> 5, plus 1 -> 4 across the paths."""
    dag = nx.DiGraph([(0, 1), (1, 2), (2, 5), (0, 3), (3, 4), (4, 5), (1, 4)])
    dag.graph.update(input=0, output=5)
    return dag


def test_sequential_groups_follow_single_successor_single_predecessor_paths():
    dag = nx.DiGraph([(0, 1), (1, 2), (2, 3), (3, 7), (0, 4), (4, 5), (4, 6), (5, 7), (6, 7)])
    dag.graph.update(input=0, output=7)
    groups = sequential_groups(dag)
    assert sorted(map(tuple, groups)) == [(1, 2, 3), (4,), (5,), (6,)]
    assert sorted(v for g in groups for v in g) == [1, 2, 3, 4, 5, 6]


def test_paper_assignment_keeps_groups_whole_and_balances_load():
    dag = cnas.generate("dp", 40, seed=3)
    rng = np.random.default_rng(0)
    weights = {v: float(rng.integers(1, 100)) for v in dag}
    for units in (2, 4, 8):
        a = paper_assignment(dag, units, weights)
        assert a[dag.graph["output"]] == 0
        for group in sequential_groups(dag):
            assert len({a[v] for v in group}) == 1
        inner = [v for v in dag if v not in (dag.graph["input"], dag.graph["output"])]
        load = [sum(weights[v] for v in inner if a[v] == u) for u in range(units)]
        heaviest_group = max(sum(weights[v] for v in g) for g in sequential_groups(dag))
        # Greedy LPT guarantee: no unit exceeds the average by more than one group.
        assert max(load) <= sum(load) / units + heaviest_group


def test_normalize_puts_the_output_on_unit_zero_and_rejects_bad_assignments():
    dag = diamond_dag()
    a = normalize_assignment(dag, {0: 1, 1: 1, 2: 1, 3: 0, 4: 0, 5: 1}, 2)
    assert a == {0: 0, 1: 0, 2: 0, 3: 1, 4: 1, 5: 0}
    with pytest.raises(CnasError, match="vertex 4"):
        normalize_assignment(dag, {0: 0, 1: 0, 2: 0, 3: 0, 5: 0}, 2)
    with pytest.raises(CnasError, match="units run 0..1"):
        normalize_assignment(dag, {v: 2 for v in dag}, 2)
    with pytest.raises(CnasError, match="unknown placement"):
        make_assignment(dag, 2, "random")


def test_plan_sends_one_message_per_receiving_unit_not_per_consumer():
    dag = nx.DiGraph([(0, 1), (1, 2), (1, 3), (1, 4), (2, 5), (3, 5), (4, 5)])
    dag.graph.update(input=0, output=5)
    plan = build_plan(dag, {0: 0, 1: 0, 2: 1, 3: 1, 4: 0, 5: 0}, 2)
    # Vertex 1 feeds 2 and 3 on unit 1: one transfer. 2 and 3 come back to the output.
    assert plan.transfers == (Transfer(1, 0, 1), Transfer(2, 1, 0), Transfer(3, 1, 0))
    assert plan.schedules == ((0, 1, 4, 5), (2, 3))
    assert not plan.needs_image(1)


def test_plan_scatters_the_image_to_every_unit_that_runs_the_stem():
    dag = diamond_dag()
    plan = build_plan(dag, {0: 0, 1: 0, 2: 0, 3: 1, 4: 1, 5: 0}, 2)
    assert plan.transfers[0] == Transfer(IMAGE, 0, 1)
    assert plan.schedules[1][0] == 0 and plan.schedules[0][0] == 0  # the stem runs on both
    assert Transfer(1, 0, 1) in plan.transfers  # the cross edge 1 -> 4
    assert plan.bytes_sent({1: 100, 2: 10, 3: 10, 4: 7}, image_bytes=50) == 50 + 100 + 7
    # Every non-input vertex runs exactly once, each schedule in topological order.
    runs = [v for s in plan.schedules for v in s if v != 0]
    assert sorted(runs) == [1, 2, 3, 4, 5]
    position = {v: i for i, v in enumerate(nx.lexicographical_topological_sort(dag))}
    for s in plan.schedules:
        assert list(s) == sorted(s, key=position.__getitem__)


def test_single_unit_simulation_is_the_sum_of_vertex_times():
    dag = cnas.generate("er", 20, seed=1)
    times = {v: 0.001 * (1 + v % 5) for v in dag}
    plan = build_plan(dag, single_assignment(dag), 1)
    run = simulate(plan, times, {v: 1000 for v in dag}, 100, TransferModel(1e-4, 1e9))
    assert run.latency_s == pytest.approx(sum(times.values()))
    assert run.messages == 0 and run.bytes_sent == 0


def test_two_branches_on_two_units_overlap_and_pay_for_their_transfers():
    dag = diamond_dag()
    dag.remove_edge(1, 4)
    times = {0: 1.0, 1: 2.0, 2: 2.0, 3: 3.0, 4: 3.0, 5: 1.0}
    out_bytes = {v: 1000 for v in dag}
    model = TransferModel(latency_s=0.5, bandwidth_Bps=1000.0, send_cpu_s=0.25)
    plan = build_plan(dag, {0: 0, 1: 0, 2: 0, 3: 1, 4: 1, 5: 0}, 2)
    run = simulate(plan, times, out_bytes, 500, model)
    # The one-way time (latency + bytes / bandwidth) includes the sender's CPU share.
    # The image reaches unit 1 at 0.5 + 0.5 = 1; it runs stem, 3, 4 (7 s) and sends 4,
    # which reaches unit 0 at 8 + 0.5 + 1 = 9.5. Unit 0 finished its own branch at
    # 0.25 + 5 = 5.25, so the output ends at 9.5 + 1 = 10.5.
    assert run.latency_s == pytest.approx(10.5)
    assert run.busy_s == pytest.approx((0.25 + 1 + 2 + 2 + 1, 1 + 3 + 3 + 0.25))
    assert run.messages == 2 and run.bytes_sent == 1500
    sequential = simulate(build_plan(dag, single_assignment(dag), 1), times, out_bytes, 500, model)
    assert sequential.latency_s == pytest.approx(12.0)
    # On one host a message's bytes are copied by the sender's CPU: same arrival times,
    # but unit 0 is busy 0.5 s longer for the image, unit 1 1 s longer for vertex 4.
    shared = simulate(plan, times, out_bytes, 500, model, hosts=[0, 0])
    assert shared.latency_s == pytest.approx(10.5)
    assert shared.busy_s == pytest.approx((0.25 + 0.5 + 6, 7 + 0.25 + 1))


def test_units_sharing_a_host_slow_each_other_only_while_both_compute():
    dag = nx.DiGraph([(0, 1), (0, 2), (1, 3), (2, 3)])
    dag.graph.update(input=0, output=3)
    plan = build_plan(dag, {0: 0, 1: 0, 2: 1, 3: 0}, 2)
    solo = {0: 1.0, 1: 1.0, 2: 3.0, 3: 1.0}
    contended = {v: 2 * s for v, s in solo.items()}  # half speed while the other unit computes
    free = TransferModel(latency_s=0.0, bandwidth_Bps=1e30)
    args = (plan, solo, {v: 8 for v in dag}, 8, free)
    # Both units run the stem at half speed (done at 2); unit 0 runs vertex 1 at half
    # speed (done at 4) while unit 1 gets 1 of vertex 2's 3 s done; alone, unit 1 needs 2 s
    # more (6); the output runs alone (7).
    shared = simulate(*args, contended_s=contended, hosts=[0, 0])
    assert shared.latency_s == pytest.approx(7.0)
    assert shared.busy_s == pytest.approx((2 + 2 + 1, 2 + 4))
    # On separate hosts, or with no contention measured, solo times apply: 1 + 3 + 1.
    assert simulate(*args, contended_s=contended).latency_s == pytest.approx(5.0)
    assert simulate(*args, hosts=[0, 0]).latency_s == pytest.approx(5.0)


def test_blocking_receives_wait_for_the_most_urgent_message_like_gloo_units():
    dag = nx.DiGraph([(0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 5)])
    dag.graph.update(input=0, output=5)
    plan = build_plan(dag, {0: 0, 1: 1, 2: 2, 3: 0, 4: 0, 5: 0}, 3)
    assert plan.schedules[0] == (3, 4, 5)
    times = {0: 1.0, 1: 5.0, 2: 1.0, 3: 2.0, 4: 2.0, 5: 1.0}
    free = TransferModel(latency_s=0.0, bandwidth_Bps=1e30)
    args = (plan, times, {v: 8 for v in dag}, 8, free)
    # Vertex 2's map reaches unit 0 at 2, vertex 1's at 6. Waking for any message, unit 0
    # runs 4 at 2 and 3 at 6: done at 9. Blocking on the most urgent one (1, for vertex
    # 3, first in its schedule), it idles until 6 although 2 is there: done at 11.
    assert simulate(*args).latency_s == pytest.approx(9.0)
    assert simulate(*args, wait_any=False).latency_s == pytest.approx(11.0)


def test_fit_transfer_model_recovers_latency_and_bandwidth():
    sizes = [1e3, 1e4, 1e5, 1e6, 1e7]
    times = [50e-6 + s / 3e9 for s in sizes]
    model = fit_transfer_model(sizes, times)
    assert model.latency_s == pytest.approx(50e-6, rel=1e-3)
    assert model.bandwidth_Bps == pytest.approx(3e9, rel=1e-3)
    edge = TransferModel.network(bandwidth_mbit=100, latency_ms=2)
    assert edge.seconds(12_500_000) == pytest.approx(1.002)


def _tiny_settings(image=16):
    from concurrent_nas.shapes import CompileSettings

    return CompileSettings(image_size=image, stem_channels=8, channel_cap=16)


def test_in_process_schedules_and_threads_reproduce_the_network_output():
    import torch

    from concurrent_nas.placement.threads import threaded_forward
    from concurrent_nas.placement.worker import _Status, make_input, run_schedule

    dag = cnas.generate("dp", 12, seed=2)
    settings = _tiny_settings()
    torch.manual_seed(0)
    net = cnas.build_network(dag, settings).eval()
    image = make_input(settings, 0)
    with torch.inference_mode():
        expected = net(image)
        plan = build_plan(dag, single_assignment(dag), 1)
        times: dict = {}
        got = run_schedule(plan, 0, net.blocks, None, image, _Status(0), times)
        assert torch.equal(got, expected)
        assert set(times) == set(dag)
        threaded = threaded_forward(net, image, workers=3)
        assert torch.allclose(threaded, expected, rtol=1e-5, atol=1e-6)


def test_busy_port_is_a_clear_error():
    import socket

    from concurrent_nas.placement.ports import check_port, free_port

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        with pytest.raises(CnasError, match="port .* is busy"):
            check_port("127.0.0.1", s.getsockname()[1])
    check_port("127.0.0.1", free_port())


def test_timed_kahypar_keeps_the_option_the_simulator_predicts_fastest():
    from concurrent_nas.placement.plan import build_plan as plan_of
    from concurrent_nas.placement.timed import timed_assignment

    dag = cnas.generate("dp", 30, seed=5)
    rng = np.random.default_rng(1)
    times = {v: float(rng.uniform(1e-3, 5e-3)) for v in dag}
    out_bytes = {v: int(rng.integers(1e4, 1e6)) for v in dag}
    model = TransferModel(1e-4, 2e9)
    chosen = timed_assignment(dag, 3, "kahypar-time", times, out_bytes, 1000, model, eps=(0.03, 0.3))
    assert chosen[dag.graph["output"]] == 0 and set(chosen.values()) <= {0, 1, 2}
    best = simulate(plan_of(dag, chosen, 3), times, out_bytes, 1000, model).latency_s
    alone = simulate(plan_of(dag, single_assignment(dag), 1), times, out_bytes, 1000, model).latency_s
    assert best < alone
    for eps in (0.03, 0.3):
        one = timed_assignment(dag, 3, "kahypar-time", times, out_bytes, 1000, model, eps=(eps,))
        assert best <= simulate(plan_of(dag, one, 3), times, out_bytes, 1000, model).latency_s + 1e-12
    by_time = timed_assignment(dag, 3, "paper-time", times, out_bytes, 1000, model)
    assert by_time == paper_assignment(dag, 3, times)
    with pytest.raises(CnasError, match="needs measured vertex times"):
        make_assignment(dag, 3, "kahypar-time")


def test_predicted_placement_keeps_one_unit_when_no_split_pays_for_its_wake_ups():
    """Same DAG and times: with cheap messages the predicted placement splits; when every
    message to a waiting unit costs a 50 ms wake-up (far above any vertex, 1-5 ms), no
    split can win and everything stays on unit 0."""
    from concurrent_nas.placement.plan import build_plan as plan_of
    from concurrent_nas.placement.timed import timed_assignment

    dag = cnas.generate("dp", 30, seed=5)
    rng = np.random.default_rng(1)
    times = {v: float(rng.uniform(1e-3, 5e-3)) for v in dag}
    out_bytes = {v: int(rng.integers(1e4, 1e6)) for v in dag}
    cheap = TransferModel(1e-4, 2e9)
    split = timed_assignment(dag, 2, "predicted", times, out_bytes, 1000, cheap)
    assert set(split.values()) == {0, 1}
    sleepy = TransferModel(1e-4, 2e9, wake_s=0.05)
    assert simulate(plan_of(dag, split, 2), times, out_bytes, 1000, sleepy).latency_s > sum(times.values())
    assert timed_assignment(dag, 2, "predicted", times, out_bytes, 1000, sleepy) == single_assignment(dag)


def test_shm_unit_polls_before_it_sleeps(tmp_path):
    """A polling shared-memory unit sees a message by its flag alone, before (or without)
    the doorbell: the wake-up of a sleeping unit is what polling saves. Spinning is only
    chosen when every unit and thread has a free core."""
    import threading

    import torch

    from concurrent_nas.placement.distributed import SPIN_S, spin_budget
    from concurrent_nas.placement.plan import Transfer
    from concurrent_nas.placement.transport import ShmTransport, init_flags

    t = Transfer(3, 0, 1)
    init_flags(tmp_path, 1)
    bells = [threading.Semaphore(0), threading.Semaphore(0)]
    receiver = ShmTransport(1, [(t, (4,))], tmp_path, bells, [t], spin_s=5.0)
    receiver.begin(1)
    sender = ShmTransport(0, [], tmp_path, bells, [t])
    sender.begin(1)
    sender._target(t, torch.ones(4)).copy_(torch.full((4,), 7.0))
    sender.flags[0] = 1  # the flag, and no ring of the doorbell
    receiver.wait_any([t])  # would block for ever on the semaphore without polling
    assert receiver.tensor(t).tolist() == [7.0] * 4
    assert spin_budget(2, 1, free_cores=2) == SPIN_S and spin_budget(2, 2, free_cores=3) == 0.0
