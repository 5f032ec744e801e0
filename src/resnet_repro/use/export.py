"""`python -m resnet_repro.export RUN_DIR [--which best|last] [--out FILE]`: a run's network as a plain weights
file (state_dict and constructor arguments, weights.export) that loads with torch alone; `export FILE --from NAME
--out X.pt`: a published checkpoint of another project in the same format, its convention recorded."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from resnet_repro.errors import UserError, one_line, printable_streams
from resnet_repro.use import conventions
from resnet_repro.use.weights import export


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m resnet_repro.export", description=" ".join(__doc__.split("\n\n")[0].split())
    )
    parser.add_argument("run", type=Path, help="a run directory (or a checkpoint inside one), or a file with --from")
    parser.add_argument("--which", choices=("best", "last"), default="best", help="best by val error, or final")
    parser.add_argument("--out", type=Path, default=None, help="the file to write (default: <run>/export/...)")
    conventions.add_argument(parser)
    args = parser.parse_args(argv)
    printable_streams()
    try:
        out = export(args.run, args.out, args.which, args.convention)
    except UserError as err:
        print(f"error: {one_line(err)}", file=sys.stderr)
        sys.exit(2)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
