"""The report's command line: `python -m resnet_repro.report SWEEP [SWEEP ...] [--out DIR]`."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from resnet_repro.errors import UserError
from resnet_repro.report.render import write_report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m resnet_repro.report", description=__doc__.split("\n")[0])
    parser.add_argument("sweeps", nargs="+", type=Path, help="sweep directories (their runs hold recipe.json)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: <first sweep>/report)")
    parser.add_argument(
        "--compare",
        action="append",
        default=[],
        metavar="KEY",
        help="a config key whose effect to tabulate: a recipe key (trainer.precision) or how runs computed (compile)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(format="warning: %(message)s", level=logging.WARNING)  # one line per note on stderr
    missing = [s for s in args.sweeps if not s.is_dir()]
    try:
        if missing:
            raise UserError(f"not a directory: {', '.join(map(str, missing))}")
        report = write_report(args.sweeps, args.out or args.sweeps[0] / "report", tuple(args.compare))
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    print(f"wrote {report}")


if __name__ == "__main__":
    main()
