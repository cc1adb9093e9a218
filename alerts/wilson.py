"""The Wilson score interval of a proportion: how sure a rate of few trials is.

A conversion of 1 in 3 is "33%" but says little; its 95% Wilson interval,
(0.06, 0.79), says how little. Rules with ``confidence`` alert only when the
whole interval is on the wrong side of the threshold (E. B. Wilson, "Probable
inference, the law of succession, and statistical inference", JASA 22, 1927;
method 3 in R. G. Newcombe, Statistics in Medicine 17, 1998).
"""

from __future__ import annotations

import math
from statistics import NormalDist


def wilson_interval(successes: float, trials: float, confidence: float) -> tuple[float, float]:
    """The (lower, upper) Wilson score interval for ``successes`` out of ``trials`` at two-sided ``confidence``."""
    if not trials > 0 or not math.isfinite(trials):
        raise ValueError(f"trials must be a finite number above 0, got {trials}")
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must be from 0 to trials ({trials}), got {successes}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    share = successes / trials
    z2_per_trial = z * z / trials
    centre = share + z2_per_trial / 2
    spread = z * math.sqrt(share * (1 - share) / trials + z2_per_trial / (4 * trials))
    scale = 1 + z2_per_trial
    # At 0 or all successes a bound is exactly 0 or 1; the formula leaves rounding residue there.
    lower = 0.0 if successes == 0 else max(0.0, (centre - spread) / scale)
    upper = 1.0 if successes == trials else min(1.0, (centre + spread) / scale)
    return lower, upper
