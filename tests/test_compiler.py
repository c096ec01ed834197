"""The compiled network agrees with the shape pass and fits the PyTorch ecosystem."""

from __future__ import annotations

import weakref

import networkx as nx
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import concurrent_nas as cn
from concurrent_nas.compiler import ConcurrentNet, build_network, load_model, save_model
from concurrent_nas.errors import CnasError
from concurrent_nas.shapes import MERGES, CompileSettings, shape_pass

GENERATORS = ["er", "ba", "ws", "dp", "fb", "chain", "resnet50"]



def _n_params(net):
    return sum(p.numel() for p in net.parameters())


def _image(settings, batch=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, settings.in_channels, settings.image_size, settings.image_size, generator=g)


@pytest.mark.parametrize("merge", MERGES)
@pytest.mark.parametrize("gen", GENERATORS)
@pytest.mark.parametrize(
    "settings",
    [
        CompileSettings(),
        CompileSettings(staging="greedy", image_size=28, stem_channels=16, channel_cap=128, num_classes=7),
    ],
    ids=["probabilistic-32px", "greedy-28px"],
)
def test_built_module_agrees_with_shape_pass(gen, settings, merge):
    settings = settings.replace(merge=merge)
    dag = cn.generate(gen, nodes=24, seed=1)
    table = shape_pass(dag, settings)
    net = build_network(dag, settings, init_seed=0).eval()
    assert _n_params(net) == table["params"].sum()
    for v in net.order:
        assert sum(p.numel() for p in net.blocks[str(v)].parameters()) == table.loc[v, "params"]
    seen = {}
    for v in net.order:
        net.blocks[str(v)].register_forward_hook(lambda m, i, o, v=v: seen.__setitem__(v, tuple(o.shape[1:])))
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        logits = net(_image(settings))
    assert logits.shape == (1, settings.num_classes)
    assert seen == table["out_shape"].to_dict()
    # Exact: the shape pass counts what torch's FLOP counter counts (convolutions and the
    # classifier, 2 FLOPs per multiply-add); elementwise work is left out of both.
    assert counter.get_total_flops() == table["flops"].sum()


def test_flops_per_vertex_and_batch_scaling():
    settings = CompileSettings(staging="greedy")
    dag = cn.generate("dp", nodes=16, seed=4)
    table = shape_pass(dag, settings)
    net = build_network(dag, settings).eval()
    x = _image(settings, batch=3)
    acts = {}
    with torch.no_grad():
        acts[net.order[0]] = net.blocks[str(net.order[0])]([x])
        for v in net.order[1:]:
            inputs = [acts[u] for u in sorted(dag.predecessors(v))]
            with FlopCounterMode(display=False) as counter:
                acts[v] = net.blocks[str(v)](inputs)
            assert counter.get_total_flops() == 3 * table.loc[v, "flops"], v


def test_blocks_run_one_by_one_reproduce_forward():
    dag = cn.generate("ws", nodes=20, seed=0)
    net = build_network(dag, init_seed=3).eval()
    x = _image(net.settings, batch=2)
    assert net.order == cn.dag.topological_order(dag)
    assert set(net.blocks.keys()) == {str(v) for v in dag}
    acts = {net.input_vertex: net.blocks[str(net.input_vertex)]([x])}
    with torch.no_grad():
        for v in net.order[1:]:
            acts[v] = net.blocks[str(v)]([acts[u] for u in sorted(dag.predecessors(v))])
        assert torch.equal(acts[net.output_vertex], net(x))


def test_forward_frees_each_activation_after_its_last_consumer():
    dag = cn.generate("dp", nodes=30, seed=2)
    net = build_network(dag).eval()
    position = {v: i for i, v in enumerate(net.order)}
    last_use = {u: max(position[w] for w in dag.successors(u)) for u in net.order[:-1]}
    refs, live_counts = {}, []

    def before(v):
        def hook(module, args):
            alive = {u for u, r in refs.items() if r() is not None}
            live_counts.append((v, alive))
        return hook

    def after(v):
        def hook(module, args, output):
            refs[v] = weakref.ref(output)
        return hook

    for v in net.order:
        net.blocks[str(v)].register_forward_pre_hook(before(v))
        net.blocks[str(v)].register_forward_hook(after(v))
    with torch.no_grad():
        net(_image(net.settings))
    assert len(live_counts) == len(net.order)
    for v, alive in live_counts:
        expected = {u for u in net.order[: position[v]] if last_use[u] >= position[v]}
        assert alive == expected, v


def test_fx_trace_and_torch_export():
    dag = cn.generate("dp", nodes=12, seed=0)
    net = build_network(dag, init_seed=0).eval()
    x = _image(net.settings, batch=2)
    traced = torch.fx.symbolic_trace(net)
    exported = torch.export.export(net, (x,))
    with torch.no_grad():
        expected = net(x)
        assert torch.allclose(traced(x), expected)
        assert torch.allclose(exported.module()(x), expected)


def test_state_dict_round_trip_with_weights_only(tmp_path):
    dag = cn.generate("ba", nodes=16, seed=0)
    settings = CompileSettings(staging="greedy")
    net = build_network(dag, settings, init_seed=1)
    # give the batch-norm buffers non-default values so they must travel too
    net.train()
    with torch.no_grad():
        net(_image(settings, batch=4))
    net.eval()
    torch.save(net.state_dict(), tmp_path / "w.pt")
    fresh = build_network(dag, settings, init_seed=2).eval()
    x = _image(settings, seed=5)
    assert not torch.equal(fresh(x), net(x))
    fresh.load_state_dict(torch.load(tmp_path / "w.pt", weights_only=True))
    assert torch.equal(fresh(x), net(x))

    save_model(net, tmp_path / "model.pt")
    torch.load(tmp_path / "model.pt", weights_only=True)  # plain containers only
    loaded = load_model(tmp_path / "model.pt").eval()
    assert isinstance(loaded, ConcurrentNet)
    assert loaded.settings == settings
    assert sorted(loaded.dag.edges) == sorted(net.dag.edges)
    assert torch.equal(loaded(x), net(x))


def test_load_model_errors(tmp_path):
    with pytest.raises(CnasError, match="no such model file"):
        load_model(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(CnasError, match="not a readable model file"):
        load_model(tmp_path / "junk.pt")
    torch.save({"hello": 1}, tmp_path / "other.pt")
    with pytest.raises(CnasError, match="not a concurrent-nas model"):
        load_model(tmp_path / "other.pt")


def test_training_steps_reduce_the_loss():
    dag = cn.generate("dp", nodes=12, seed=0)
    settings = CompileSettings(image_size=16, num_classes=4)
    net = build_network(dag, settings, init_seed=0).train()
    x = _image(settings, batch=8)
    y = torch.arange(8) % 4
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    before = {k: p.detach().clone() for k, p in net.named_parameters()}
    losses = []
    for _ in range(8):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(x), y)
        loss.backward()
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert all(not torch.equal(before[k], p) for k, p in net.named_parameters())


def test_eval_is_deterministic_and_init_seed_reproducible():
    dag = cn.generate("er", nodes=16, seed=0)
    a = build_network(dag, init_seed=7).eval()
    b = build_network(dag, init_seed=7).eval()
    c = build_network(dag, init_seed=8).eval()
    x = _image(a.settings, batch=2)
    with torch.no_grad():
        assert torch.equal(a(x), a(x))
        assert torch.equal(a(x), b(x))
        assert not torch.equal(a(x), c(x))
    state = torch.get_rng_state()
    build_network(dag, init_seed=1)
    assert torch.equal(state, torch.get_rng_state())  # init_seed leaves the global RNG alone


def test_compile_is_the_old_name_of_build_network():
    from concurrent_nas import compiler

    assert compiler.compile is build_network and cn.compile is build_network


def test_bad_inputs_raise_cnas_errors():
    with pytest.raises(CnasError, match="cycle"):
        build_network(nx.DiGraph([(0, 1), (1, 2), (2, 1), (2, 3)]))
    with pytest.raises(CnasError, match="source vertices"):
        build_network(nx.DiGraph([(0, 2), (1, 2), (2, 3)]))
    with pytest.raises(CnasError, match="too small"):
        build_network(cn.generate("chain", nodes=6), CompileSettings(staging="greedy", image_size=4))
    net = build_network(cn.generate("chain", nodes=4))
    with pytest.raises(CnasError, match=r"takes \(B, 3, 32, 32\)"):
        net.check_input(torch.zeros(1, 3, 28, 28))
    net.check_input(torch.zeros(2, 3, 32, 32))


# --- command line ---------------------------------------------------------------------

from concurrent_nas.cli.main import main  # noqa: E402
from concurrent_nas.graphjson import write_graph  # noqa: E402
from concurrent_nas.rundir import load_architectures, load_parquet  # noqa: E402


def test_cli_compile_prints_table_and_saves_a_loadable_model(small_dp_run, tmp_path, capsys):
    target = tmp_path / "arch3.pt"
    assert main(["compile", str(small_dp_run), "3", "--staging", "greedy", "--check", "--save", str(target)]) == 0
    out = capsys.readouterr().out
    (_, _, dag), = load_architectures(small_dp_run, [3])
    settings = CompileSettings(staging="greedy")
    table = shape_pass(dag, settings)
    assert f"total: {int(table['params'].sum()):,} parameters" in out
    assert "check: every vertex's output shape" in out
    assert sum(line.split()[0].isdigit() for line in out.splitlines()) == dag.number_of_nodes()
    net = load_model(target)
    assert net.settings == settings and _n_params(net) == table["params"].sum()
    x = _image(settings)
    reference = build_network(dag, settings, init_seed=0).eval()
    with torch.no_grad():
        assert torch.equal(net.eval()(x), reference(x))


def test_cli_compile_reads_a_json_graph(tmp_path, capsys):
    dag = cn.generate("ba", nodes=10, seed=1)
    write_graph(dag, tmp_path / "g.json")
    assert main(["compile", str(tmp_path / "g.json"), "--image-size", "64", "--classes", "3"]) == 0
    out = capsys.readouterr().out
    total = int(shape_pass(dag, CompileSettings(image_size=64, num_classes=3))["params"].sum())
    assert f"total: {total:,} parameters" in out and "image 64px" in out


@pytest.mark.parametrize(
    "argv, words",
    [
        (["compile", "{run}"], "give an architecture id"),
        (["compile", "{run}", "99"], "has no architecture 99"),
        (["compile", "{run}", "0", "--staging", "eager"], "unknown staging mode 'eager'"),
        (["compile", "{run}", "0", "--channel-cap", "8"], "channel_cap 8 is below stem_channels 32"),
        (["compile", "{run}", "0", "--staging", "greedy", "--image-size", "4"], "too small"),
        (["params", "{run}", "--staging", "greedy,fast"], "--staging expects modes"),
        (["params", "{run}/nope"], "no such run directory"),
        (["compile", "{run}", "0", "--save", "{run}/missing/m.pt"], "does not exist; create it first"),
    ],
)
def test_cli_bad_input_is_a_one_line_error(small_dp_run, capsys, argv, words):
    assert main([a.format(run=small_dp_run) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cnas: error:") and words in err and err.count("\n") == 1


def test_cli_params_summarises_and_writes_per_architecture_counts(small_dp_run, tmp_path, capsys):
    import shutil

    import pandas as pd

    run = tmp_path / "run"
    shutil.copytree(small_dp_run, run)
    assert main(["params", str(run), "--staging", "greedy,probabilistic", "--out", str(tmp_path / "t.csv")]) == 0
    counts = load_parquet(run / "params.parquet")
    assert len(counts) == 2 * 12 and set(counts["staging"]) == {"greedy", "probabilistic"}
    archs = {a: d for a, _, d in load_architectures(run)}
    for row in counts.itertuples():
        assert row.params == shape_pass(archs[row.arch_id], CompileSettings(staging=row.staging))["params"].sum()
    summary = pd.read_csv(tmp_path / "t.csv")
    for row in summary.itertuples():
        part = counts[counts["staging"] == row.staging]["params"]
        assert row.count == 12
        assert row.mean_M == pytest.approx(part.mean() / 1e6)
        assert row.std_M == pytest.approx(part.std() / 1e6)
    assert "probabilistic" in capsys.readouterr().out


def test_settings_options_ignore_a_commands_own_fields():
    import argparse

    from concurrent_nas.cli.common import add_compile_options, compile_settings_from_args

    parser = argparse.ArgumentParser()
    parser.add_argument("--image-size", dest="image_size", type=int, default=None)  # the command's own
    add_compile_options(parser, skip=("image_size",))
    args = parser.parse_args(["--staging", "greedy", "--channel-cap", "128"])
    settings = compile_settings_from_args(args)
    assert settings == CompileSettings(staging="greedy", channel_cap=128)
    assert compile_settings_from_args(args, image_size=64).image_size == 64


# --- property: any DAG, any settings ----------------------------------------------------

from hypothesis import HealthCheck, given, settings as hsettings, strategies as st  # noqa: E402


@st.composite
def dags_and_settings(draw):
    n = draw(st.integers(3, 10))
    edges = [(u, v) for u in range(n) for v in range(u + 1, n) if draw(st.booleans())]
    dag = nx.DiGraph(edges)
    dag.add_nodes_from(range(n))
    dag = cn.dag.add_input_output(dag)
    for v in draw(st.lists(st.integers(1, n), max_size=2)):
        dag.nodes[v]["stage"] = True
    stem = draw(st.integers(1, 12))
    compile_settings = CompileSettings(
        image_size=draw(st.integers(16, 40)),
        in_channels=draw(st.integers(1, 4)),
        stem_channels=stem,
        channel_cap=stem + draw(st.integers(0, 40)),
        staging=draw(st.sampled_from(["uniform", "greedy", "probabilistic"])),
        staging_prob=draw(st.sampled_from([0.0, 0.3, 0.5, 1.0])),
        staging_seed=draw(st.integers(0, 3)),
        channel_multiplier=draw(st.integers(1, 3)),
        num_classes=draw(st.integers(1, 5)),
        merge=draw(st.sampled_from(MERGES)),
    )
    return dag, compile_settings


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dags_and_settings())
def test_any_dag_and_settings_compile_as_the_shape_pass_says(case):
    dag, settings = case
    try:
        table = shape_pass(dag, settings)
    except CnasError as exc:  # only legitimate refusal here: too many downsamplings
        assert "too small" in str(exc)
        with pytest.raises(CnasError, match="too small"):
            build_network(dag, settings)
        return
    net = build_network(dag, settings, init_seed=0).eval()
    assert _n_params(net) == table["params"].sum()
    seen = {}
    for v in net.order:
        net.blocks[str(v)].register_forward_hook(lambda m, i, o, v=v: seen.__setitem__(v, tuple(o.shape[1:])))
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(_image(settings, batch=2))
    assert seen == table["out_shape"].to_dict()
    assert counter.get_total_flops() == 2 * table["flops"].sum()
