"""Predicted latency as a score: device profiles and a latency-aware placement (issue #15).

* :mod:`.profiles` -- the TOML device profile (units, compute model, links, topology),
  its loader and the shipped ``paper`` and ``edge`` profiles;
* :mod:`.predict` -- :func:`predict_latency` for one (architecture, units, profile);
* :mod:`.run` -- predictions for every scored architecture of a run (``cnas score --profile``);
* :mod:`.hostprofile` -- ``cnas profile``: the ``this-host`` profile, measured.

After :mod:`concurrent_nas.placement` in the pipeline: it uses its simulator and
placement search, and scoring's partitions as candidates.
"""

from .predict import LatencyPrediction, block_seconds, critical_path_s, predict_latency
from .profiles import ComputeModel, DeviceProfile, LinkModel, load_profile, profile_to_toml, shipped_profiles

__all__ = [
    "ComputeModel",
    "DeviceProfile",
    "LatencyPrediction",
    "LinkModel",
    "block_seconds",
    "critical_path_s",
    "load_profile",
    "predict_latency",
    "profile_to_toml",
    "shipped_profiles",
]
