"""``cnas compile``: per-vertex shapes, parameters and FLOPs of one architecture; save the model."""

from __future__ import annotations

from ..errors import CnasError
from .common import add_compile_options, compile_settings_from_args
from .top import add_rank_options, architecture_id

def register(sub) -> None:
    p = sub.add_parser(
        "compile",
        help="per-vertex shapes, params and FLOPs of one architecture; --save a PyTorch model",
        description="Shape pass of one architecture (a run directory and an architecture id, "
        "or a node-link JSON graph file) as a per-vertex table with totals. With --save, "
        "build the torch module and store architecture, settings and weights in one file "
        "(reload with concurrent_nas.compiler.load_model).",
    )
    p.add_argument("source", help="run directory, or a node-link JSON graph file")
    p.add_argument("id", nargs="?", type=int, help="architecture id in the run (or give --rank)")
    add_rank_options(p)
    add_compile_options(p)
    p.add_argument("--save", metavar="FILE", help="build the model and save architecture + weights to FILE")
    p.add_argument("--init-seed", type=int, default=0, help="seed of the initial weights for --save (default 0)")
    p.add_argument("--export", choices=("onnx", "pt2", "torchscript"),
                   help="also write a portable model to --out, kept only if its logits match PyTorch's "
                   "(onnx: load with onnxruntime; pt2: torch.export.load; torchscript: torch.jit.load)")
    p.add_argument("--out", metavar="FILE", help="file for --export")
    p.add_argument("--check", action="store_true",
                   help="also build the model, run one image through it and compare every vertex's shape")
    p.set_defaults(func=run)


def _format_table(table) -> str:
    import pandas as pd

    def ids(preds):
        text = ",".join(map(str, preds)) or "image"
        return text if len(text) <= 24 else text[:21] + "..."

    def merged(shapes):  # what the block works on after its scaling blocks
        return f"{max(s[0] for s in shapes)}x{min(s[1] for s in shapes)}x{min(s[2] for s in shapes)}"

    def scaling(items):
        pools = sum("maxpool" in s for s in items)
        convs = sum("conv1x1" in s for s in items)
        return ", ".join(t for t in (f"{pools} pool" if pools else "", f"{convs} conv" if convs else "") if t)

    view = pd.DataFrame({
        "role": table["role"],
        "inputs": table["preds"].map(ids),
        "merged_in": table["in_shapes"].map(merged),
        "scaling": table["scaling_blocks"].map(scaling),
        "staged": table["staged"].map({True: "yes", False: ""}),
        "out_shape": table["out_shape"].map(lambda s: "x".join(map(str, s))),
        "params": table["params"].map("{:,}".format),
        "MFLOPs": (table["flops"] / 1e6).map("{:.2f}".format),
        "out_KiB": (table["out_bytes"] / 1024).map("{:.1f}".format),
    })
    return view.to_string()


def run(args) -> int:
    from ..rundir import load_architectures
    from ..shapes import check_forward_fits, shape_pass

    settings = compile_settings_from_args(args)
    _check_export_args(args)
    path_is_run = not (str(args.source).endswith(".json"))
    if not path_is_run and args.rank is not None:
        raise CnasError(f"--rank needs a run directory; {args.source} is one graph")
    arch = architecture_id(args, args.source, "compile") if path_is_run else None
    archs = load_architectures(args.source, None if arch is None else [arch])
    arch_id, generator, dag = archs[0]
    table = shape_pass(dag, settings)
    if args.check or args.export:  # before anything is printed or allocated
        check_forward_fits(table, settings)
    print(f"architecture {arch_id} ({generator}, {dag.number_of_nodes()} vertices, "
          f"{dag.number_of_edges()} edges), staging {settings.staging}, merge {settings.merge}, "
          f"image {settings.image_size}px")
    print(_format_table(table))
    print(
        f"total: {int(table['params'].sum()):,} parameters ({table['params'].sum() * 4 / 2**20:.2f} MiB float32), "
        f"{table['flops'].sum() / 1e6:.2f} MFLOPs per image (1 multiply-add = 2 FLOPs), "
        f"{int(table['staged'].sum())} staged blocks, "
        f"{sum(len(s) for s in table['scaling_blocks'])} scaling blocks, "
        f"activations {table['out_bytes'].sum() / 2**20:.2f} MiB"
    )
    if args.save or args.check or args.export:
        from ..compiler import build_network, save_model

        net = build_network(dag, settings, init_seed=args.init_seed)
        if args.check:
            mismatches = _check_shapes(net, table)
            if mismatches:
                raise CnasError(f"built module disagrees with the shape pass at vertices {mismatches}")
            built = sum(p.numel() for p in net.parameters())
            print(f"check: every vertex's output shape and the parameter count ({built:,}) match the shape pass")
        if args.save:
            save_model(net, args.save)
            print(f"saved {args.save} (load with concurrent_nas.load_model)")
        if args.export:
            from ..compiler.export import CHECK_BATCH, FORMATS, export_model

            diff = export_model(net, args.out, args.export, seed=args.init_seed)
            print(f"exported {args.out} ({args.export}; load with {FORMATS[args.export]}): its logits on "
                  f"{CHECK_BATCH} seeded images are within {diff:.2g} of PyTorch's")
    return 0


def _check_export_args(args) -> None:
    """--export and --out go together, and the file's directory must exist (checked before any work)."""
    if args.export and not args.out:
        raise CnasError(f"--export {args.export} needs --out FILE")
    if args.out and not args.export:
        raise CnasError("--out is the file of --export; add --export onnx|pt2|torchscript (or use --save FILE)")
    if args.export:
        from ..compiler.export import check_export

        check_export(args.out, args.export)


def _check_shapes(net, table) -> list[int]:
    import torch

    seen = {}
    hooks = [
        net.blocks[str(v)].register_forward_hook(lambda m, i, o, v=v: seen.__setitem__(v, tuple(o.shape[1:])))
        for v in net.order
    ]
    s = net.settings
    net.eval()
    with torch.no_grad():
        net(torch.zeros(1, s.in_channels, s.image_size, s.image_size))
    for h in hooks:
        h.remove()
    bad = [v for v in net.order if seen.get(v) != tuple(table.loc[v, "out_shape"])]
    if sum(p.numel() for p in net.parameters()) != int(table["params"].sum()):
        bad.append("params")
    return bad
