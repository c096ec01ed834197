"""``cnas profile --out FILE``: measure this host as a device profile (TOML)."""

from __future__ import annotations


def register(sub) -> None:
    from ..predict.hostprofile import ProfileOptions
    from .common import add_options

    p = sub.add_parser(
        "profile",
        help="measure this host's block times and transfers as a device profile (TOML) for --profile",
        description="Time the block shapes that occur in compiled networks (channels x sizes x inputs, one "
        "thread) and gloo and shared-memory messages between two local processes, fit the profile's "
        "compute and link models and write them to FILE (see docs/predicted-latency.md for the format).",
    )
    add_options(p, ProfileOptions, choices={"transport": ("gloo", "shm")})
    p.set_defaults(func=run)


def run(args) -> int:
    from ..predict.hostprofile import ProfileOptions, measure_host_profile
    from .common import options_from_args

    profile, out = measure_host_profile(options_from_args(args, ProfileOptions))
    c, link = profile.compute, profile.link
    print(f"{out}: compute {c.flops_per_s / 1e9:.3g} GFLOP/s, {c.bytes_per_s / 1e9:.3g} GB/s, "
          f"{c.overhead_s * 1e6:.3g} us per block; link {link.latency_s * 1e3:.3g} ms + "
          f"{link.bandwidth_Bps * 8 / 1e6:.4g} Mbit/s, send {link.send_cpu_s * 1e3:.3g} ms")
    return 0
