"""What `cnas latency` checks and decides without starting a unit: options, flags, failures."""

from __future__ import annotations

import pytest

from concurrent_nas.cli.main import build_parser
from concurrent_nas.errors import CnasError
from concurrent_nas.placement import TRANSPORTS, LatencyOptions, TransferModel
from concurrent_nas.placement import distributed
from concurrent_nas.placement.failures import (
    MasterPortTaken,
    OutputDiffers,
    PeerLost,
    PortTaken,
    UnitError,
    describe,
    peer_calls,
    reported,
)
from concurrent_nas.placement.options import check_image_size, check_transport
from concurrent_nas.placement.faults import fault_spec
from concurrent_nas.placement.worker import FAULT_ENV, injected_fault


@pytest.mark.parametrize("kwargs, message", [
    ({"units": (0, 2)}, "--units must be positive, got 0,2"),
    ({"placements": ("magic",)}, "unknown placement 'magic'; choose from kahypar, paper"),
    ({"placements": ()}, "unknown placement ''"),
    ({"transports": ("carrier-pigeon",)}, "unknown transport 'carrier-pigeon'; choose gloo, shm or nccl"),
    ({"transports": ()}, "unknown transport ''"),
    ({"repeats": 0}, "--repeats must be >= 1, got 0"),
    ({"threads": 0}, "--threads must be >= 1, got 0"),
    ({"warmup": -1}, "--warmup must be >= 0, got -1"),
    ({"timeout_s": 0.0}, "--timeout must be > 0, got 0.0"),
    ({"network": TransferModel.network(bandwidth_mbit=0, latency_ms=1)}, "--bandwidth-mbit must be > 0"),
    ({"network": TransferModel.network(bandwidth_mbit=10, latency_ms=-1)}, "--bandwidth-mbit must be > 0 and --latency-ms >= 0"),
])
def test_latency_options_refuse_bad_values_naming_the_flag(kwargs, message):
    with pytest.raises(CnasError, match="^" + message.replace("(", r"\(")) as err:
        LatencyOptions(**kwargs)
    assert "\n" not in str(err.value)


def test_default_latency_options_are_valid_and_the_transports_are_one_list():
    assert LatencyOptions().units == (1, 2)
    assert TRANSPORTS == ("gloo", "shm", "nccl")
    for transport in TRANSPORTS:
        assert check_transport(transport) == transport
    assert check_image_size(8) == 8
    with pytest.raises(CnasError, match="--image-size must be at least 8, got 4"):
        check_image_size(4)


def latency_args(*argv):
    return build_parser().parse_args(["latency", "RUN", *argv])


def test_latency_flags_come_from_the_options_and_image_is_a_hidden_alias(capsys):
    from concurrent_nas.cli.latency import latency_options

    args = latency_args("--units", "1,4", "--placement", "paper,threads", "--transport", "shm",
                        "--unit-timeout", "9", "--no-calibrate", "--simulate-units", "6,8")
    assert latency_options(args) == LatencyOptions(units=(1, 4), placements=("paper", "threads"), transports=("shm",),
                                     timeout_s=9.0, calibrate=False, simulate_units=(6, 8))
    assert latency_options(latency_args()) == LatencyOptions()
    spaced = latency_options(latency_args("--placement", "kahypar, paper", "--transport", "gloo, shm"))
    assert spaced.placements == ("kahypar", "paper") and spaced.transports == ("gloo", "shm")
    network = latency_options(latency_args("--bandwidth-mbit", "100", "--latency-ms", "2")).network
    assert network == TransferModel.network(bandwidth_mbit=100, latency_ms=2)
    assert latency_args("--image-size", "64").image_size == 64
    assert latency_args("--image", "64").image_size == 64  # the old name keeps working
    with pytest.raises(SystemExit):
        build_parser().parse_args(["latency", "--help"])
    text = capsys.readouterr().out
    assert "--image-size" in text and "--image " not in text and "--image\n" not in text


def test_the_fault_seam_reads_one_variable_for_one_unit(monkeypatch):
    monkeypatch.delenv(FAULT_ENV, raising=False)
    assert injected_fault(1) is None
    monkeypatch.setenv(FAULT_ENV, "1:hang:3")
    assert injected_fault(1) == ("hang", 3) and injected_fault(0) is None
    monkeypatch.setenv(FAULT_ENV, "0:early:2")
    assert injected_fault(0) == ("early", 2) and fault_spec() == (0, "early", 2)
    monkeypatch.setenv(FAULT_ENV, "1:explode:3")
    with pytest.raises(ValueError, match="die, hang, corrupt, corrupt-message, late, early"):
        injected_fault(1)


def test_unit_failures_are_told_apart_by_type_not_by_message():
    with pytest.raises(PeerLost) as lost, peer_calls():
        raise RuntimeError("Connection closed by peer [127.0.0.1]:1234\ndetails")
    assert describe(lost.value) == "RuntimeError: Connection closed by peer [127.0.0.1]:1234"
    with pytest.raises(OutputDiffers), peer_calls():  # our own errors pass through as they are
        raise OutputDiffers("distributed output differs")
    with pytest.raises(ValueError), peer_calls():  # not a failed message: not a lost peer
        raise ValueError("bad")
    assert type(reported(KeyError("k"))) is UnitError and str(reported(KeyError("k"))) == "KeyError: 'k'"
    # A message saying "peer" no longer blames the unit's peers; a PeerLost does.
    errors = {0: PeerLost("RuntimeError: Connection reset"), 1: UnitError("ValueError: peer weights")}
    assert distributed._culprit(None, {}, errors, 2) == (1, "failed: ValueError: peer weights")
    errors = {0: UnitError("RuntimeError: peer connection"), 1: PeerLost("RuntimeError: x")}
    assert distributed._culprit(None, {}, errors, 2)[0] == 0
    assert isinstance(MasterPortTaken("x"), UnitError)


def test_a_taken_master_port_is_retried_on_a_fresh_one(monkeypatch):
    masters = []

    def launch(cfg):
        masters.append(cfg.master)
        if len(masters) < 3:
            raise PortTaken("unit 0 of 2 failed: DistNetworkError: address already in use", 0)
        return {"ok": True}

    monkeypatch.setattr(distributed, "launch_units", launch)
    cfg = distributed.UnitConfig(dag=None, settings=None, plan=None, master="127.0.0.1:1")
    assert distributed.measure_placed(cfg) == {"ok": True}
    assert len(set(masters)) == 3
    masters.clear()
    with pytest.raises(PortTaken):
        distributed.measure_placed(cfg, port_retries=2)
    assert len(masters) == 2
