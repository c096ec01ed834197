"""cnas compile --export onnx|pt2|torchscript: files that give PyTorch's logits, or no file."""

from __future__ import annotations

import pytest
import torch

import concurrent_nas as cnas
from concurrent_nas.cli.main import main
from concurrent_nas.compiler.export import compare_outputs, export_model, sample_images
from concurrent_nas.errors import CnasError


@pytest.fixture(scope="module")
def net():
    return cnas.build_network(cnas.generate("dp", nodes=12, seed=3), cnas.CompileSettings(image_size=16))


def load_and_run(fmt: str, path, images):
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return torch.as_tensor(session.run(["logits"], {"image": images.numpy()})[0])
    with torch.no_grad():
        module = torch.export.load(str(path)).module() if fmt == "pt2" else torch.jit.load(str(path))
        return module(images)


@pytest.mark.parametrize("fmt", ["onnx", "pt2", "torchscript"])
def test_exported_file_gives_pytorchs_logits_at_any_batch(net, fmt, tmp_path):
    path = tmp_path / f"net.{fmt}"
    diff = export_model(net, path, fmt)
    assert 0 <= diff <= 1e-4 and path.is_file()
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # nothing left aside
    images = sample_images(net, 7, seed=11)  # a batch size neither the export nor its check used
    with torch.no_grad():
        expected = net(images)
    assert torch.allclose(load_and_run(fmt, path, images), expected, rtol=1e-4, atol=1e-5)


def test_compare_outputs_is_allclose_with_the_stated_tolerance():
    reference = torch.tensor([[1.0, -2.0], [0.0, 100.0]], dtype=torch.float64)
    assert compare_outputs(reference, reference.numpy() + 5e-6) == pytest.approx(5e-6, rel=1e-6)
    # 100 may be off by 1e-5 + 1e-4 * 100 = 0.01001; 0.02 is too much.
    assert compare_outputs(reference, reference + torch.tensor([[0, 0], [0, 0.01]], dtype=torch.float64)) == pytest.approx(0.01, rel=1e-3)
    with pytest.raises(CnasError, match="disagrees with PyTorch by up to 0.02"):
        compare_outputs(reference, reference + torch.tensor([[0, 0], [0, 0.02]], dtype=torch.float64))
    with pytest.raises(CnasError, match=r"shape \(1, 2\)"):
        compare_outputs(reference, reference[:1])


class _DriftingNet(torch.nn.Module):
    """Adds how often it ran: a trace bakes in the count, so the file disagrees with eager."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.settings, self.calls = inner, inner.settings, 0

    def forward(self, x):
        self.calls += 1
        return self.inner(x) + self.calls


def test_a_file_that_disagrees_is_never_written(net, tmp_path):
    path = tmp_path / "net.pt"
    path.write_bytes(b"previous")
    with pytest.raises(CnasError, match="disagrees with PyTorch by up to 1 .*nothing written"):
        export_model(_DriftingNet(net), path, "torchscript")
    assert path.read_bytes() == b"previous" and len(list(tmp_path.iterdir())) == 1


def test_cli_exports_a_run_architecture(small_dp_run, tmp_path, capsys):
    out = tmp_path / "a3.pt"
    assert main(["compile", str(small_dp_run), "3", "--image-size", "16", "--export", "torchscript",
                 "--out", str(out)]) == 0
    assert "exported" in capsys.readouterr().out
    from concurrent_nas.rundir import Run

    expected = cnas.build_network(Run(small_dp_run).dag(3), cnas.CompileSettings(image_size=16), init_seed=0).eval()
    images = sample_images(expected, 2, seed=5)
    with torch.no_grad():
        assert torch.allclose(torch.jit.load(str(out))(images), expected(images), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("args,fragment", [
    (["--export", "onnx"], "--export onnx needs --out FILE"),
    (["--out", "{tmp}/x.onnx"], "--out is the file of --export"),
    (["--export", "pt2", "--out", "{tmp}/missing/x.pt2"], "does not exist"),
    (["--export", "onx", "--out", "{tmp}/x"], "did you mean 'onnx'"),
])
def test_bad_export_input_is_one_line_exit_2(small_dp_run, tmp_path, args, fragment, capsys):
    argv = [a.format(tmp=tmp_path) for a in args]
    try:
        code = main(["compile", str(small_dp_run), "0", *argv])
    except SystemExit as stop:  # argparse's own errors exit from the parser
        code = stop.code
    out, err = capsys.readouterr()
    assert code == 2 and fragment in err and len(err.splitlines()) == 1
    assert out == "" and list(tmp_path.iterdir()) == []


def test_load_model_is_public():
    from concurrent_nas.compiler import load_model

    assert cnas.load_model is load_model
