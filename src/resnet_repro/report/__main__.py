"""The report's command line: `python -m resnet_repro.report SWEEP [SWEEP ...] [--out DIR]`, or its calibration:
`python -m resnet_repro.report --calibrate [--json] [--world FILE] [--sims N]`."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from resnet_repro.errors import UserError, one_line, printable_streams
from resnet_repro.report.render import write_report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m resnet_repro.report", description=" ".join(__doc__.split("\n\n")[0].split())
    )
    parser.add_argument("sweeps", nargs="*", type=Path, help="sweep directories (their runs hold recipe.json)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: <first sweep>/report)")
    parser.add_argument(
        "--compare",
        action="append",
        default=[],
        metavar="KEY",
        help="a config key whose effect to tabulate: a recipe key (trainer.precision) or how runs computed (compile)",
    )
    parser.add_argument(
        "--calibrate",
        action="store_true",
        help="simulate sweeps through the claim code: the rate of any false verdict and each claim's power at 2, "
        "3 and 5 seeds per network",
    )
    parser.add_argument("--json", action="store_true", help="with --calibrate: print JSON instead of a table")
    parser.add_argument(
        "--world",
        type=Path,
        default=None,
        help='with --calibrate: a JSON file {"family", "dataset", "nets": {label: {metric: [mean, std]}}} to use '
        "instead of the paper's numbers",
    )
    parser.add_argument("--sims", type=int, default=2000, help="with --calibrate: simulated sweeps per seed count")
    args = parser.parse_args(argv)
    printable_streams()
    logging.basicConfig(format="warning: %(message)s", level=logging.WARNING)  # one line per note on stderr
    try:
        if args.calibrate:
            calibrate(args)
            return
        if not args.sweeps:
            raise UserError("name at least one sweep directory (or --calibrate)")
        missing = [s for s in args.sweeps if not s.is_dir()]
        if missing:
            raise UserError(f"not a directory: {', '.join(map(str, missing))}")
        report = write_report(args.sweeps, args.out or args.sweeps[0] / "report", tuple(args.compare))
    except UserError as err:
        print(f"error: {one_line(err)}", file=sys.stderr)
        sys.exit(2)
    print(f"wrote {report}")


def calibrate(args: argparse.Namespace) -> None:
    from resnet_repro.report import calibrate as calibration  # the simulation, loaded when asked for

    if args.sims < 1:
        raise UserError(f"--sims {args.sims}: must be at least 1")
    if args.sweeps:
        raise UserError("--calibrate takes no sweep directories (--world FILE describes the effects to simulate)")
    worlds = calibration.read_world(args.world) if args.world else None
    result = calibration.calibrate(worlds, args.sims)
    print(json.dumps(result, indent=2) if args.json else calibration.table(result))


if __name__ == "__main__":
    main()
