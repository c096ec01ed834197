"""The merge setting: what each merge computes, and that it reaches every place settings go."""

from __future__ import annotations

import pickle

import pytest
import torch

import concurrent_nas as cn
from concurrent_nas.cli.main import main as cnas
from concurrent_nas.compiler import build_network, load_model, save_model
from concurrent_nas.compiler.blocks import OutputBlock, WeightedMerge
from concurrent_nas.errors import CnasError
from concurrent_nas.rundir import load_parquet
from concurrent_nas.shapes import DEFAULT_MERGE, MERGES, CompileSettings, VertexPlan, shape_pass

TINY = CompileSettings(image_size=16, stem_channels=8, channel_cap=16)


def two_input_plan(role: str = "block") -> VertexPlan:
    """Two inputs of the same shape, so the scaling blocks are identities."""
    return VertexPlan(5, role, (1, 2), ((4, 6), (4, 6)), (False, False), (False, False), 4, 6, False,
                      4, 6, 0, 0, 0, 0)  # fmt: skip


@pytest.mark.parametrize("merge", MERGES)
def test_each_merge_computes_its_formula(merge):
    block = WeightedMerge(two_input_plan(), merge)
    with torch.no_grad():
        block.weights.copy_(torch.tensor([0.3, -1.2]))
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 4, 6, 6, generator=g), torch.randn(2, 4, 6, 6, generator=g)
    w1, w2 = 0.3, -1.2
    expected = {
        "sigmoid-inputs": w1 * torch.sigmoid(a) + w2 * torch.sigmoid(b),
        "sigmoid-weights": torch.sigmoid(torch.tensor(w1)) * a + torch.sigmoid(torch.tensor(w2)) * b,
        "sum": w1 * a + w2 * b,
    }[merge]
    assert torch.allclose(block([a, b]), expected, atol=1e-6)


def test_the_output_vertex_never_squashes_its_inputs():
    # With sigmoid-inputs the output block merges as a sum (the fix that lifted every
    # network off chance); the other merges keep their own form.
    for merge, used in (("sigmoid-inputs", "sum"), ("sigmoid-weights", "sigmoid-weights"), ("sum", "sum")):
        assert OutputBlock(two_input_plan("output"), merge).merge.merge == used


def test_the_merge_reaches_every_block_of_a_built_network():
    dag = cn.generate("dp", 10, seed=2)
    for merge in MERGES:
        net = build_network(dag, TINY.replace(merge=merge), init_seed=0)
        merges = {m.merge for m in net.modules() if isinstance(m, WeightedMerge)}
        assert merges == ({"sum"} | {merge} if merge == "sigmoid-inputs" else {merge})
        assert f"merge={merge!r}" in net.extra_repr()


def test_merges_differ_in_output_but_not_in_parameters_or_flops():
    dag = cn.generate("ws", 16, seed=0)
    tables = [shape_pass(dag, TINY.replace(merge=m)) for m in MERGES]
    for table in tables[1:]:
        assert table[["params", "flops", "out_bytes"]].equals(tables[0][["params", "flops", "out_bytes"]])
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    outs = [build_network(dag, TINY.replace(merge=m), init_seed=0).eval()(x) for m in MERGES]
    assert not torch.allclose(outs[0], outs[1]) and not torch.allclose(outs[1], outs[2])


def test_unknown_merge_is_a_one_line_error():
    with pytest.raises(CnasError, match="unknown merge 'avg'; choose one of sigmoid-inputs, sigmoid-weights, sum"):
        CompileSettings(merge="avg")
    assert CompileSettings().merge == DEFAULT_MERGE == "sigmoid-weights"


def test_saved_model_keeps_its_merge_and_old_files_load_as_the_papers(tmp_path):
    dag = cn.generate("dp", 8, seed=1)
    net = build_network(dag, TINY.replace(merge="sum"), init_seed=3).eval()
    save_model(net, tmp_path / "m.pt")
    back = load_model(tmp_path / "m.pt").eval()
    x = torch.randn(1, 3, 16, 16)
    assert back.settings.merge == "sum" and torch.equal(back(x), net(x))
    # A file written before the merge setting existed: its settings have no "merge".
    payload = torch.load(tmp_path / "m.pt", weights_only=True)
    del payload["settings"]["merge"]
    torch.save(payload, tmp_path / "old.pt")
    assert load_model(tmp_path / "old.pt").settings.merge == "sigmoid-inputs"


def test_placed_units_build_the_merge_they_are_given():
    from concurrent_nas.placement import build_plan, make_assignment
    from concurrent_nas.placement.distributed import make_config, measure_placed

    settings = TINY.replace(merge="sum")  # not the default: it must travel to the units
    dag = cn.generate("dp", 10, seed=4)
    plan = build_plan(dag, make_assignment(dag, 2, "paper", settings=settings), 2)
    cfg = make_config(dag, settings, plan, transport="shm", repeats=2, warmup=1)
    # Units are spawned: they get the config pickled, settings and all.
    assert pickle.loads(pickle.dumps(cfg)).settings == settings
    result = measure_placed(cfg)  # unit 0 checks every placed output against its own net(image)
    assert result["max_abs_diff"] <= 1e-5
    # ... and that single-process output is the "sum" network's, not the default's.
    from concurrent_nas.placement.worker import make_input

    torch.manual_seed(cfg.weights_seed)
    expected = build_network(dag, settings).eval()(make_input(settings, cfg.input_seed))
    torch.manual_seed(cfg.weights_seed)
    default = build_network(dag, TINY).eval()(make_input(settings, cfg.input_seed))
    assert not torch.allclose(expected, default)


@pytest.mark.parametrize("command", ["compile", "params", "score", "latency", "train"])
def test_every_command_that_compiles_takes_merge(command, capsys):
    with pytest.raises(SystemExit):
        cnas([command, "--help"])
    assert "--merge" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        ["compile", "{run}", "0", "--merge", "avg"],
        ["params", "{run}", "--merge", "avg"],
        ["train", "{run}", "--dataset", "digits", "--epochs", "1", "--merge", "avg"],
    ],
)
def test_cli_unknown_merge_is_one_line_exit_2_and_writes_nothing(argv, tmp_path, capsys):
    run = tmp_path / "run"
    assert cnas(["sample", "--gen", "dp", "--n", "1", "--nodes", "5", "--out-dir", str(run)]) == 0
    before = sorted(p.name for p in run.iterdir())
    capsys.readouterr()
    assert cnas([a.replace("{run}", str(run)) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err == "cnas: error: unknown merge 'avg'; choose one of sigmoid-inputs, sigmoid-weights, sum\n"
    assert sorted(p.name for p in run.iterdir()) == before


def test_cli_compile_reports_and_saves_the_merge(tmp_path, capsys):
    run = tmp_path / "run"
    assert cnas(["sample", "--gen", "dp", "--n", "1", "--nodes", "6", "--out-dir", str(run)]) == 0
    args = ["compile", str(run), "0", "--image-size", "16", "--stem-channels", "8", "--channel-cap", "16"]
    assert cnas([*args, "--merge", "sigmoid-inputs", "--check", "--save", str(tmp_path / "m.pt")]) == 0
    out = capsys.readouterr().out
    assert "merge sigmoid-inputs" in out and "match the shape pass" in out
    assert load_model(tmp_path / "m.pt").settings.merge == "sigmoid-inputs"


def test_another_merge_is_another_configuration_and_a_mixed_checkpoint_is_refused(tmp_path, capsys):
    import json
    import shutil

    run = tmp_path / "run"
    assert cnas(["sample", "--gen", "dp", "--n", "1", "--nodes", "5", "--out-dir", str(run)]) == 0
    base = ["train", str(run), "--dataset", "digits", "--image-size", "8", "--stem-channels", "4",
            "--channel-cap", "8", "--device", "cpu"]  # fmt: skip
    assert cnas([*base, "--epochs", "1", "--merge", "sum"]) == 0
    # Another merge is another training configuration: it trains beside the first.
    assert cnas([*base, "--epochs", "1", "--merge", "sigmoid-inputs"]) == 0
    configs = json.loads((run / "train_configs.json").read_text())
    merges = {h: json.dumps(c, sort_keys=True) for h, c in configs.items()}
    by_merge = {m: h for m in ("sum", "sigmoid-inputs") for h, text in merges.items() if f'"{m}"' in text}
    assert len(configs) == 2 and len(by_merge) == 2
    accuracy = load_parquet(run / "accuracy.parquet")
    assert sorted(accuracy["config"]) == sorted(by_merge.values())
    # A checkpoint made with one merge, found where the other resumes, is refused in one line.
    folders = run / "checkpoints" / "digits"
    shutil.rmtree(folders / by_merge["sigmoid-inputs"] / "arch-00000")
    shutil.copytree(folders / by_merge["sum"] / "arch-00000", folders / by_merge["sigmoid-inputs"] / "arch-00000")
    capsys.readouterr()
    assert cnas([*base, "--epochs", "2", "--merge", "sigmoid-inputs"]) == 2
    error = capsys.readouterr().err.splitlines()[-1]
    assert error.startswith("cnas: error: checkpoint ") and "--restart" in error
    assert "was made with a different merge (sum vs sigmoid-inputs)" in error
    assert cnas([*base, "--epochs", "2", "--merge", "sum"]) == 0  # the same merge resumes