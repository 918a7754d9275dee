"""The report's sections, in the order a reader meets them: each is a function of the shared
``Context`` returning its ``Section`` (or None when it has nothing to say)."""

from __future__ import annotations

from sweeps.report.sections import (
    activations,
    differences,
    experiments,
    failures,
    gradcheck,
    joint,
    setup,
    sparsity,
    summary,
    tuning,
)

SECTIONS = [
    summary.section,
    experiments.section,
    differences.section,
    joint.section,
    gradcheck.section,
    activations.section,
    sparsity.section,
    tuning.section,
    failures.section,
    setup.section,
]
