"""Accuracy estimates: each proxy against a hand computation, determinism, the CLI's table and refusals."""

from __future__ import annotations

import math
import shutil

import pytest
import torch
from torch import nn

from concurrent_nas import CnasError, CompileSettings, generate
from concurrent_nas.cli.main import main as cnas
from concurrent_nas.compiler import build_network
from concurrent_nas.rundir import load_parquet
from concurrent_nas.shapes import count_params
from concurrent_nas.training.data import ArrayImages, ImageData, load_dataset
from concurrent_nas.training.estimate import (
    ESTIMATES,
    METHODS,
    EstimateConfig,
    activation_codes,
    estimate_accuracy,
    grad_norm,
    jacob_cov,
    naswot,
    naswot_score,
    synflow,
)

SMALL = CompileSettings(stem_channels=4, channel_cap=8)


@pytest.fixture(scope="module")
def digits8() -> ImageData:
    """Digits at 8 px, cut to 96 training and 32 test images (short training in a second)."""
    data = load_dataset("digits", image_size=8)
    tr, te = data.train, data.test
    return ImageData(
        data.name, ArrayImages(tr.images[:96], tr.labels[:96]), ArrayImages(te.images[:32], te.labels[:32]),
        data.num_classes, data.image_size, data.classes, data.mean, data.std,
    )  # fmt: skip


@pytest.fixture(scope="module")
def dag():
    return generate("dp", nodes=6, seed=0, index=0)


def two_layer(w1, w2, *, batchnorm: bool = False) -> nn.Module:
    first, second = nn.Linear(2, 3, bias=False), nn.Linear(3, 1, bias=False)
    with torch.no_grad():
        first.weight.copy_(torch.tensor(w1))
        second.weight.copy_(torch.tensor(w2))
    layers = [first, *([nn.BatchNorm1d(3)] if batchnorm else []), nn.ReLU(), second]
    return nn.Sequential(*layers)


W1 = [[1.0, -2.0], [0.5, 0.0], [-1.0, 3.0]]
W2 = [[2.0, -1.0, 0.5]]


def test_synflow_equals_the_hand_computation():
    # R = sum_k |W2_k| * sum_j |W1_kj| = 2*3 + 1*0.5 + 0.5*4 = 8.5. R is linear in each
    # layer's |weights| (ones in, no bias), so each layer's sum of theta * dR/dtheta is R.
    assert synflow(two_layer(W1, W2), (2,)) == pytest.approx(2 * 8.5)


def test_synflow_bypasses_batchnorm_and_leaves_the_model_alone():
    model = two_layer(W1, W2, batchnorm=True)
    before = [p.detach().clone() for p in model.parameters()]
    # Batch norm on one all-ones input would zero every unit (train mode) or rescale it by
    # running statistics; the definition has no normalisation.
    assert synflow(model, (2,)) == pytest.approx(2 * 8.5)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert model.training


def test_naswot_kernel_by_hand():
    # Two images, 4 units, Hamming distance 2: K = [[4, 2], [2, 4]], det 12.
    codes = torch.tensor([[1, 1, 0, 0], [1, 0, 1, 0]])
    assert naswot_score(codes) == pytest.approx(math.log(12))
    # One unit on per image: every pair differs in 2 of 4 units, K = 2 I + 2 J (3x3),
    # eigenvalues 8, 2, 2, det 32.
    eye = torch.tensor([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]])
    assert naswot_score(eye) == pytest.approx(math.log(32))


def test_naswot_of_identical_codes_is_minus_infinity(dag):
    # Identical codes make every row of K_H equal: det 0, log -inf.
    assert naswot_score(torch.ones(5, 7)) == -math.inf
    net = build_network(dag, SMALL.replace(image_size=8), init_seed=0)
    same = torch.randn(1, 3, 8, 8).repeat(4, 1, 1, 1)
    codes = activation_codes(net, same)
    assert torch.equal(codes[0], codes[3])
    assert naswot(net, same) == -math.inf
    assert math.isfinite(naswot(net, torch.randn(4, 3, 8, 8)))


def test_activation_codes_cover_every_relu_unit(dag):
    net = build_network(dag, SMALL.replace(image_size=8), init_seed=0)
    x = torch.randn(3, 3, 8, 8)
    sizes = []
    handles = [m.register_forward_hook(lambda m, i, o: sizes.append(o[0].numel()))
               for m in net.modules() if isinstance(m, nn.ReLU)]  # fmt: skip
    with torch.no_grad():
        net(x)
    for h in handles:
        h.remove()
    units = sum(sizes)
    assert activation_codes(net, x).shape == (3, units)


def test_grad_norm_by_hand():
    # Linear 2 -> 2 without bias, weights zero: logits 0, softmax uniform, so
    # dL/dW = (p - onehot) x^T / N; for one image x = (3, 4), label 0: rows (-0.5, 0.5) * x.
    model = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        model.weight.zero_()
    value = grad_norm(model, torch.tensor([[3.0, 4.0]]), torch.tensor([0]))
    assert value == pytest.approx(math.sqrt(2) * 0.5 * 5.0)


def test_jacob_cov_prefers_uncorrelated_jacobians():
    # A linear map has the same Jacobian for every image: correlation 1, eigenvalues
    # (N, 0, ..., 0). Score -sum(log(s + k) + 1/(s + k)) with k = 1e-5.
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    n, k = 3, 1e-5
    expected = -((math.log(n + k) + 1 / (n + k)) + (n - 1) * (math.log(k) + 1 / k))
    assert jacob_cov(model, torch.randn(n, 4)) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("method", METHODS)
def test_every_method_is_deterministic(dag, digits8, method):
    config = EstimateConfig(image_size=8, epochs=1, batch_size=16, seed=3)
    first = estimate_accuracy(dag, method, SMALL, config=config, data=digits8)
    again = estimate_accuracy(dag, method, SMALL, config=config, data=digits8)
    assert first == again
    assert not math.isnan(first)


def test_params_is_the_shape_pass(dag, digits8):
    config = EstimateConfig(image_size=8)
    value = estimate_accuracy(dag, "params", SMALL, config=config, data=digits8)
    assert value == count_params(dag, SMALL.replace(image_size=8))


def test_seed_changes_the_initial_weights(dag, digits8):
    values = {
        estimate_accuracy(dag, "grad-norm", SMALL, config=EstimateConfig(image_size=8, seed=s), data=digits8)
        for s in (0, 1)
    }  # fmt: skip
    assert len(values) == 2


def test_short_training_is_a_percentage(dag, digits8):
    value = estimate_accuracy(dag, "short-training", SMALL, config=EstimateConfig(image_size=8, epochs=1),
                              data=digits8)  # fmt: skip
    assert 0.0 <= value <= 100.0


def test_refusals(dag, digits8):
    with pytest.raises(CnasError, match="unknown estimate method 'accuracy'"):
        estimate_accuracy(dag, "accuracy", SMALL, data=digits8)
    with pytest.raises(CnasError, match="holds 8 px images, the estimate asks for 16 px"):
        estimate_accuracy(dag, "synflow", SMALL, config=EstimateConfig(image_size=16), data=digits8)
    with pytest.raises(CnasError, match="--image-size 4"):
        EstimateConfig(image_size=4)


def test_cli_writes_the_table_and_replaces_its_rows(small_dp_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(small_dp_run, run)
    opts = ["--ids", "0,2", "--image-size", "8", "--stem-channels", "4", "--channel-cap", "8", "--torch-threads", "1"]
    assert cnas(["estimate", str(run), "--method", "synflow", *opts]) == 0
    assert cnas(["estimate", str(run), "--method", "params", *opts]) == 0
    assert cnas(["estimate", str(run), "--method", "synflow", *opts]) == 0
    table = load_parquet(run / ESTIMATES)
    rows = sorted(zip(table["method"], table["arch_id"]))
    assert rows == [("params", 0), ("params", 2), ("synflow", 0), ("synflow", 2)]
    columns = {"arch_id", "generator", "nodes", "method", "dataset", "image_size", "estimate", "seconds"}
    assert columns <= set(table.columns)
    assert (table["dataset"] == "digits").all() and (table["image_size"] == 8).all()
    assert (table.query("method == 'synflow'")["estimate"] > 0).all()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--method", "accuracy"], "unknown estimate method 'accuracy'"),
        (["--method", "naswot", "--image-size", "4"], "--image-size 4"),
        (["--method", "naswot", "--ids", "99"], "has no architecture 99"),
        (["--method", "naswot", "--dataset", "cifar10", "--data-dir", "/nonexistent"], "CIFAR-10 not found"),
    ],
)
def test_cli_refuses_bad_input_with_one_line_and_writes_nothing(small_dp_run, tmp_path, capsys, args, message):
    run = tmp_path / "run"
    shutil.copytree(small_dp_run, run)
    assert cnas(["estimate", str(run), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (run / ESTIMATES).exists()
