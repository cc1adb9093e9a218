"""Settings for every test."""

from hypothesis import settings

# Property tests check what is computed, never how fast: a busy machine must not fail them
# (speed is measured in bench/). Hypothesis' per-example deadline is off.
settings.register_profile("kpimon", deadline=None)
settings.load_profile("kpimon")
