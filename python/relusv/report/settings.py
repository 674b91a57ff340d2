"""The knobs of a report, with the full and the quick (CI) defaults."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional

from ..analysis.compare import DEFAULT_ALPHA, DEFAULT_BOOTSTRAP, DEFAULT_MAX_GROUP_SIZE
from ..layer_table import DEFAULT_RELU_MAX_STEPS
from ..width import DEFAULT_SAMPLES, DEFAULT_TRIM


@dataclass(frozen=True)
class ReportSettings:
    """Settings of one report; every random choice derives from ``seed``.

    gmw_samples, gmw_trim
        Gaussian directions per GMW estimate and the trimmed-mean fraction
        (default: the library's, the paper's estimator of 100 samples, 10 % trimmed at each end).
    repeats
        Number of equal-size subsample pairs per comparison, all on the same
        Gaussian directions (MATH.md section 11).
    permutations, bootstrap, alpha
        Relabellings of the pooled points (permutation p-value; None: from the number of comparisons,
        ``relusv.analysis.compare.permutations_for``; the report records the count used), bootstrap
        resamples (0: the effect's interval from the permutation spread) and the family-wise level of the
        verdicts (Holm over every comparison of the report).
    max_group_size
        Each group enters the comparisons with at most this many points (a
        seeded random subset; keeps big data sets cheap).
    spectrum_points
        Number of ranks k per layer at which ReLU bounds are computed
        (evenly spaced over 0 .. min(m, n) - 1, always including 0);
        ``None`` for every k.
    spectrum_max_steps
        Adam steps per fitted k in ``relu_singular_values`` (deterministic).
    spectrum_time_budget
        Optional cap in seconds per ``relu_singular_values`` call. ``None``
        (the default) keeps the curves reproducible: with a cap, how far each
        fit gets depends on the machine's speed and load.
    sphere_points, sphere_max_steps
        The unit-ball curve of each hidden layer (``b = 0``, MATH.md section 1):
        points of the seeded sphere sample and Adam steps per fitted k.
    tolerance
        Harmonic pruning keeps accuracy within this many percentage points
        (as a fraction: 0.01 = one point) of the unpruned network.
    pruning_trials
        At most this many trial cuts of a torch model's harmonic pruning
        (``relusv.torch.harmonic_prune``'s ``max_iterations``); None: until
        every layer is at its lowest accepted rank. Quick: 40 (a ResNet-18's
        20 layers take about 150 otherwise).
    """

    seed: int = 0
    quick: bool = False
    gmw_samples: int = DEFAULT_SAMPLES
    gmw_trim: float = DEFAULT_TRIM
    repeats: int = 10
    permutations: Optional[int] = None
    bootstrap: int = DEFAULT_BOOTSTRAP
    alpha: float = DEFAULT_ALPHA
    max_group_size: int = DEFAULT_MAX_GROUP_SIZE
    spectrum_points: Optional[int] = None
    spectrum_max_steps: int = DEFAULT_RELU_MAX_STEPS
    spectrum_time_budget: Optional[float] = None
    sphere_points: int = 2000
    sphere_max_steps: int = 30
    tolerance: float = 0.01
    pruning_trials: Optional[int] = None

    @classmethod
    def default(cls, seed: int = 0, quick: bool = False, tolerance: float = 0.01) -> ReportSettings:
        if quick:
            return cls(seed=seed, quick=True, repeats=4, max_group_size=200, spectrum_points=9,
                       spectrum_max_steps=20,
                       sphere_points=500, sphere_max_steps=10, tolerance=tolerance, pruning_trials=40)
        return cls(seed=seed, tolerance=tolerance)

    def to_dict(self) -> dict:
        return asdict(self)
