"""A placed inference that uses a wrong message fails the run, naming the vertex and the unit.

Every inference has its own image, so a message of an earlier inference is a wrong
message. The faults come through the test seam (``CNAS_TEST_FAULT``, see
``placement/faults.py``); each is made deterministic by the seam itself (a held-back
sender waits for the receiver's state, not for a while), so the tests do not race.
"""

from __future__ import annotations

import pytest

import concurrent_nas as cnas
from concurrent_nas import dag as dagmod
from concurrent_nas.placement import IMAGE, build_plan, make_assignment
from concurrent_nas.placement.distributed import make_config, measure_placed
from concurrent_nas.placement.failures import OutputMismatch
from concurrent_nas.placement.faults import FAULT_ENV
from concurrent_nas.shapes import CompileSettings

from test_placement_run import unit_children

SETTINGS = CompileSettings(image_size=16, stem_channels=8, channel_cap=16)


def two_units(transport):
    dag = cnas.generate("dp", 10, seed=4)
    plan = build_plan(dag, make_assignment(dag, 2, "paper", settings=SETTINGS), 2)
    return dag, plan, make_config(dag, SETTINGS, plan, transport=transport, repeats=3, warmup=1, timeout_s=20.0)


def first_message(dag, plan, *, src=None, dst=None):
    """The message earliest in topological order (the image first) from ``src`` / to ``dst``."""
    position = {IMAGE: -1, **{v: i for i, v in enumerate(dagmod.topological_order(dag))}}
    chosen = [t for t in plan.transfers if (src is None or t.src == src) and (dst is None or t.dst == dst)]
    return min(chosen, key=lambda t: position[t.vertex])


def named(t) -> str:
    what = "the image" if t.vertex == IMAGE else f"vertex {t.vertex}"
    return f"{what} sent by unit {t.src} to unit {t.dst}"


@pytest.mark.parametrize("transport", ["shm", "gloo"])
@pytest.mark.parametrize("fault, culprit", [
    # unit 1 sends every message of inference 2 with 1 added: its first message is wrong.
    ("1:corrupt-message:2", dict(src=1)),
    # unit 0 uses unit 1's messages before unit 1 has written them (they hold inference 1).
    ("0:early:2", dict(dst=0)),
    # unit 1 uses the image before unit 0 has sent it.
    ("1:early:2", dict(dst=1)),
])
def test_a_wrong_message_ends_the_run_naming_the_vertex_and_both_units(transport, fault, culprit, monkeypatch):
    dag, plan, cfg = two_units(transport)
    wrong = first_message(dag, plan, **culprit)
    if fault == "1:early:2":
        assert wrong.vertex == IMAGE  # this plan scatters the image to unit 1
    monkeypatch.setenv(FAULT_ENV, fault)  # the spawned units inherit it
    with pytest.raises(OutputMismatch) as failure:
        measure_placed(cfg)
    message = str(failure.value)
    assert message.startswith(f"{named(wrong)} differs from the single-process output at inference 2 (")
    assert message.endswith("; all units stopped") and "\n" not in message
    assert failure.value.unit == wrong.dst and failure.value.vertex == wrong.vertex
    assert unit_children() == []


@pytest.mark.parametrize("transport", ["shm", "gloo"])
def test_a_late_message_is_waited_for_and_the_output_is_right(transport, monkeypatch):
    """Unit 1 holds back each message of inference 2 until unit 0 is waiting for it.

    Correct behaviour is to wait: the run succeeds and every inference's output equals
    the single-process output for its own image. A receiver that did not wait would use
    the previous inference's message and fail the run (as in the `early` fault above).
    """
    dag, plan, cfg = two_units(transport)
    assert any(t.src == 1 and t.dst == 0 for t in plan.transfers)
    monkeypatch.setenv(FAULT_ENV, "1:late:2")
    result = measure_placed(cfg)
    assert len(result["latency_s"]) == 3 and result["checked_inferences"] == 4
    assert result["max_abs_diff"] <= 1e-5
    assert [sum(u["messages"][i] for u in result["units"]) for i in range(3)] == [len(plan.transfers)] * 3
    assert unit_children() == []


def test_every_inference_has_its_own_image_and_its_own_reference():
    import torch

    from concurrent_nas.compiler import build_network
    from concurrent_nas.placement.check import make_input

    images = [make_input(SETTINGS, 0, i) for i in (1, 2, 3)]
    assert not torch.equal(images[0], images[1]) and not torch.equal(images[1], images[2])
    assert torch.equal(make_input(SETTINGS, 0, 2), images[1])  # the same on every unit and run
    assert not torch.equal(make_input(SETTINGS, 1, 2), images[1])  # and another seed, another image
    torch.manual_seed(0)
    net = build_network(cnas.generate("dp", 10, seed=4), SETTINGS).eval()
    with torch.inference_mode():
        outputs = [net(x) for x in images]
        stems = [net.blocks[str(net.order[0])]([x]) for x in images]
    # A stale output could not pass for a fresh one under the check's tolerance, but only
    # just: an untrained network's logits hardly depend on the image (about 2e-4 here),
    # which is why every message is checked too, where two images differ by far more.
    assert not torch.allclose(outputs[0], outputs[1], rtol=1e-4, atol=1e-5)
    assert (stems[0] - stems[1]).abs().max() > 0.1


def test_the_check_names_the_earliest_wrong_vertex_whichever_unit_found_it():
    import torch

    from concurrent_nas.placement.check import LOGITS, SAMPLED, SUM, all_right, verdict_error

    dag = cnas.generate("dp", 10, seed=4)
    plan = build_plan(dag, make_assignment(dag, 2, "paper", settings=SETTINGS), 2)
    order = {IMAGE: 0, **{v: i + 1 for i, v in enumerate(dagmod.topological_order(dag))}}
    assert verdict_error(3, [all_right(), all_right()], plan, order) is None
    to0, to1 = first_message(dag, plan, dst=0), first_message(dag, plan, dst=1)
    verdicts = [torch.tensor([order[to0.vertex] * 2 + 0, 0.5, SUM], dtype=torch.float64),
                torch.tensor([order[to1.vertex] * 2 + 1, 2.0, SAMPLED], dtype=torch.float64)]
    earliest = min(to0, to1, key=lambda t: order[t.vertex])
    error = verdict_error(3, verdicts, plan, order)
    assert (error.vertex, error.unit, error.source, error.inference) == (earliest.vertex, earliest.dst,
                                                                        earliest.src, 3)
    assert str(error).startswith(f"{named(earliest)} differs from the single-process output at inference 3 (")
    out = plan.output_vertex
    error = verdict_error(1, [torch.tensor([order[out] * 2, 0.25, LOGITS], dtype=torch.float64), all_right()],
                          plan, order)
    assert str(error) == (f"the output (vertex {out}) on unit 0 differs from the single-process output "
                          "at inference 1 (max abs difference 0.25)")
