"""Device profiles: what a set of units computes and sends, as a small TOML file.

A profile says how long one block takes on a unit and how long a message takes between
two units, so that :func:`.predict.predict_latency` can predict the latency of a placed
architecture without running it. The format (every key is required unless marked
optional; numbers in the units their names say)::

    name = "paper"
    description = "one line"

    [units]
    count = 10                      # or: names = ["a", "b", ...]

    [compute]                       # seconds of a block = overhead + FLOPs / rate + bytes / bandwidth
    gflops = 2.65                   # FLOPs per second / 1e9, > 0
    gbytes_per_s = 0.0              # bytes moved (inputs + output + weights) per second / 1e9; 0: not modelled
    overhead_us = 0.0               # fixed cost per block, microseconds

    [link]                          # one-way time of a message = latency + bytes / bandwidth, per hop
    latency_ms = 1.0
    bandwidth_mbit = 1.0            # Mbit/s, > 0
    send_cpu_ms = 0.0               # sender's CPU time per message (the rest overlaps with compute)
    wake_ms = 0.0                   # optional: added when the receiver sleeps, blocked waiting (default 0)
    topology = "switch"             # switch (every pair one hop) | line | star (hub = unit 0) | graph
    edges = [[0, 1], [1, 2]]        # only with topology = "graph": the links, as unit indices

    [sources]                       # optional: where every number comes from (free text per key)
    compute = "..."

On a line, star or graph a message is stored and forwarded by every unit on the
shortest path: ``hops * (latency + bytes / bandwidth)``.

Shipped profiles (``profiles/*.toml`` in this package) cite a source for every number;
``cnas profile`` measures ``this-host``.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import networkx as nx

from ..errors import CnasError

TOPOLOGIES = ("switch", "line", "star", "graph")
_KEYS = {
    "": {"name", "description", "units", "compute", "link", "sources"},
    "units": {"count", "names"},
    "compute": {"gflops", "gbytes_per_s", "overhead_us"},
    "link": {"latency_ms", "bandwidth_mbit", "send_cpu_ms", "wake_ms", "topology", "edges"},
}


@dataclass(frozen=True)
class ComputeModel:
    """Seconds of one block on one unit: ``overhead_s + flops / flops_per_s + bytes / bytes_per_s``.

    ``bytes_per_s = 0`` leaves memory traffic out of the model.
    """

    flops_per_s: float
    bytes_per_s: float = 0.0
    overhead_s: float = 0.0

    def seconds(self, flops: float, nbytes: float) -> float:
        """Compute time of a block with ``flops`` FLOPs that moves ``nbytes`` bytes."""
        memory = nbytes / self.bytes_per_s if self.bytes_per_s > 0 else 0.0
        return self.overhead_s + flops / self.flops_per_s + memory


@dataclass(frozen=True)
class LinkModel:
    """One hop of the network between units, and how the units are wired.

    ``wake_s`` is added to a message that reaches a unit blocked waiting for it, with
    nothing else to compute (:class:`..placement.simulate.TransferModel`).
    """

    latency_s: float
    bandwidth_Bps: float
    send_cpu_s: float = 0.0
    topology: str = "switch"
    edges: tuple[tuple[int, int], ...] = ()
    wake_s: float = 0.0


@dataclass(frozen=True)
class DeviceProfile:
    """A set of units, their compute model and the network between them.

    Attributes
    ----------
    name : str
        What the profile is called (``paper``, ``edge``, ``this-host``, ...).
    units : tuple of str
        Unit names; their number is how many units the profile has.
    compute : ComputeModel
        Block time on any one unit (all units alike).
    link : LinkModel
        Message cost per hop and topology.
    description : str
        One line.
    sources : dict str -> str
        Where each number comes from.
    """

    name: str
    units: tuple[str, ...]
    compute: ComputeModel
    link: LinkModel
    description: str = ""
    sources: dict = field(default_factory=dict, compare=False)

    def check_units(self, units: int) -> int:
        """``units`` if the profile has that many units, else a :class:`CnasError`."""
        if units > len(self.units):
            raise CnasError(
                f"profile '{self.name}' describes {len(self.units)} units, fewer than the {units} asked for; "
                "use fewer units or a profile with more"
            )
        return units

    def hops(self, units: int) -> dict[tuple[int, int], int]:
        """Hops between every ordered pair of the first ``units`` units (1 on a switch)."""
        pairs = [(a, b) for a in range(units) for b in range(units) if a != b]
        if self.link.topology == "switch":
            return {p: 1 for p in pairs}
        graph = topology_graph(self.link.topology, len(self.units), self.link.edges)
        lengths = dict(nx.all_pairs_shortest_path_length(graph))
        return {(a, b): lengths[a][b] for a, b in pairs}


def topology_graph(topology: str, count: int, edges=()) -> nx.Graph:
    """The links of ``count`` units as an undirected graph."""
    graph = nx.Graph()
    graph.add_nodes_from(range(count))
    if topology == "line":
        graph.add_edges_from((i, i + 1) for i in range(count - 1))
    elif topology == "star":
        graph.add_edges_from((0, i) for i in range(1, count))
    elif topology == "graph":
        graph.add_edges_from(edges)
    else:
        graph.add_edges_from((a, b) for a in range(count) for b in range(a + 1, count))
    return graph


def shipped_profiles() -> list[str]:
    """Names of the profiles that ship with the package."""
    folder = resources.files(__package__) / "profiles"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def load_profile(source: str | Path | DeviceProfile) -> DeviceProfile:
    """A profile by shipped name (``paper``, ``edge``) or from a TOML file.

    Raises
    ------
    CnasError
        An unknown name (the shipped ones are listed), an unreadable or malformed file,
        a missing or unknown field, or a value out of range.
    """
    if isinstance(source, DeviceProfile):
        return source
    text, where = _profile_text(str(source))
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CnasError(f"profile {where} is not valid TOML ({exc}); fix the file") from None
    return profile_from_dict(data, where)


def _profile_text(source: str) -> tuple[str, str]:
    if source in shipped_profiles():
        return (resources.files(__package__) / "profiles" / f"{source}.toml").read_text(), f"'{source}'"
    path = Path(source)
    if path.suffix != ".toml" and not path.exists():
        raise CnasError(
            f"no profile named '{source}'; use one of {', '.join(shipped_profiles())} "
            "or a .toml file (`cnas profile --out FILE` measures this host)"
        )
    try:
        return path.read_text(), str(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise CnasError(f"cannot read profile {path}: {getattr(exc, 'strerror', None) or exc}") from None


def profile_from_dict(data: dict, where: str = "profile") -> DeviceProfile:
    """Validate a parsed profile (see the module docstring for the format)."""
    def fail(what: str):
        raise CnasError(f"profile {where}: {what}")

    for section, keys in _KEYS.items():
        table = data if not section else data.get(section)
        if section and not isinstance(table, dict):
            fail(f"missing section [{section}]")
        unknown = sorted(set(table) - keys)
        if unknown:
            fail(f"unknown field '{(section + '.') if section else ''}{unknown[0]}'; expected one of {', '.join(sorted(keys))}")

    def number(section: str, key: str, *, positive: bool = False, default: float | None = None) -> float:
        value = data[section].get(key, default)
        if value is None:
            fail(f"missing field '{section}.{key}'")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            fail(f"'{section}.{key}' must be a number, got {value!r}")
        if value < 0 or (positive and value == 0):
            fail(f"'{section}.{key}' must be {'> 0' if positive else '>= 0'}, got {value}")
        return float(value)

    name = data.get("name")
    if not isinstance(name, str) or not name:
        fail("missing field 'name'")
    units = data["units"]
    if ("count" in units) == ("names" in units):
        fail("[units] needs exactly one of 'count' or 'names'")
    if "count" in units:
        count = units["count"]
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            fail(f"'units.count' must be a positive integer, got {count!r}")
        names = tuple(f"unit{i}" for i in range(count))
    else:
        names = units["names"]
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            fail("'units.names' must be a non-empty list of strings")
        names = tuple(names)
    compute = ComputeModel(number("compute", "gflops", positive=True) * 1e9,
                           number("compute", "gbytes_per_s") * 1e9, number("compute", "overhead_us") / 1e6)
    topology = data["link"].get("topology")
    if topology not in TOPOLOGIES:
        fail(f"'link.topology' must be one of {', '.join(TOPOLOGIES)}, got {topology!r}")
    edges = data["link"].get("edges", [])
    if (topology == "graph") != bool(edges):
        fail("'link.edges' is needed with topology = \"graph\" and only then")
    if not all(isinstance(e, list) and len(e) == 2 and all(isinstance(u, int) and 0 <= u < len(names) for u in e)
               for e in edges):
        fail(f"'link.edges' must be pairs of unit indices 0..{len(names) - 1}")
    edges = tuple(tuple(e) for e in edges)
    if not nx.is_connected(topology_graph(topology, len(names), edges)):
        fail("'link.edges' leave some units unreachable; connect every unit")
    link = LinkModel(number("link", "latency_ms") / 1e3, number("link", "bandwidth_mbit", positive=True) * 1e6 / 8,
                     number("link", "send_cpu_ms") / 1e3, topology, edges, number("link", "wake_ms", default=0.0) / 1e3)
    sources = data.get("sources", {})
    if not isinstance(sources, dict):
        fail("[sources] must be a table of text")
    return DeviceProfile(name, names, compute, link, str(data.get("description", "")), dict(sources))


def profile_to_toml(profile: DeviceProfile) -> str:
    """The TOML text of ``profile`` (what :func:`load_profile` reads back equal)."""
    c, link = profile.compute, profile.link

    def text(value: str) -> str:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'

    lines = [f"name = {text(profile.name)}", f"description = {text(profile.description)}", "", "[units]"]
    if profile.units == tuple(f"unit{i}" for i in range(len(profile.units))):
        lines.append(f"count = {len(profile.units)}")
    else:
        lines.append("names = [" + ", ".join(text(n) for n in profile.units) + "]")
    lines += ["", "[compute]", f"gflops = {c.flops_per_s / 1e9!r}", f"gbytes_per_s = {c.bytes_per_s / 1e9!r}",
              f"overhead_us = {c.overhead_s * 1e6!r}", "", "[link]", f"latency_ms = {link.latency_s * 1e3!r}",
              f"bandwidth_mbit = {link.bandwidth_Bps * 8 / 1e6!r}", f"send_cpu_ms = {link.send_cpu_s * 1e3!r}"]
    if link.wake_s:
        lines.append(f"wake_ms = {link.wake_s * 1e3!r}")
    lines.append(f"topology = {text(link.topology)}")
    if link.edges:
        lines.append("edges = [" + ", ".join(f"[{a}, {b}]" for a, b in link.edges) + "]")
    if profile.sources:
        lines += ["", "[sources]"] + [f"{k} = {text(str(v))}" for k, v in profile.sources.items()]
    return "\n".join(lines) + "\n"
