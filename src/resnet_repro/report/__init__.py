"""The report: a sweep's runs as the paper's claims with verdicts, tables next to the paper's, and its figures.

    python -m resnet_repro.report outputs/cifar10 [more sweep dirs] [--out DIR]

Three layers: collect.py (run directories -> runs -> groups of one recipe), stats.py and claims.py (pure
statistics and verdicts), paper.py (like with like: the paper's number and recipe) and render.py (report.md,
scorecard.json, figures).
"""

from resnet_repro.report.render import write_report

__all__ = ["write_report"]
