"""Hypothesis profiles shared by every test tier; choose one with HYPOTHESIS_PROFILE."""

import os

from hypothesis import HealthCheck, Verbosity, settings

# dev: quick feedback while editing.
settings.register_profile("dev", max_examples=20, deadline=None)
# ci: part of `make test`; enough examples to catch regressions in a few minutes, derandomized
# so that a red CI run is reproducible from the same commit.
settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
# nightly: `make soak`; the long search, at least 10,000 examples.
settings.register_profile(
    "nightly",
    max_examples=10_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
# debug: replaying one failure with full output.
settings.register_profile(
    "debug", max_examples=10, deadline=None, verbosity=Verbosity.debug, print_blob=True
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
