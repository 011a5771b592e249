"""Hypothesis profiles shared by every test tier; choose one with HYPOTHESIS_PROFILE.

Profiles that search at random (``nightly``) run under one session seed — taken from
``--hypothesis-seed`` or ``FMA_HYPOTHESIS_SEED``, else drawn — which is printed in the report
header and in every failure's replay line, so any failure replays with one command.
"""

import os
import random

import pytest
from hypothesis import HealthCheck, Verbosity, settings

# dev: quick feedback while editing.
settings.register_profile("dev", max_examples=20, deadline=None)
# ci: part of `make test`; enough examples to catch regressions in about a minute on two cores
# (the state machine found its first bugs within a few hundred), derandomized so that a red CI
# run is reproducible from the same commit.
settings.register_profile(
    "ci",
    max_examples=400,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
# explore: part of `make test` after ci; a short random search under a fresh session seed (printed
# in the header and every failure), so each CI run also looks somewhere new.
settings.register_profile(
    "explore",
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    print_blob=True,
    database=None,
)
# nightly: `make soak`; the long random search, at least 10,000 examples per test, under one
# printed session seed. No example database: the seed and the printed blob are the replay.
settings.register_profile(
    "nightly",
    max_examples=10_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    print_blob=True,
    database=None,
)
# debug: replaying one failure with full output.
settings.register_profile(
    "debug", max_examples=10, deadline=None, verbosity=Verbosity.debug, print_blob=True
)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "dev")
settings.load_profile(PROFILE)
if os.environ.get("FMA_HYPOTHESIS_EXAMPLES"):
    # A shorter or longer search under the same profile, e.g. to try a fix quickly.
    settings.register_profile(
        f"{PROFILE}-resized",
        settings.default,
        max_examples=int(os.environ["FMA_HYPOTHESIS_EXAMPLES"]),
    )
    settings.load_profile(f"{PROFILE}-resized")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Fix the session seed of a random profile before Hypothesis reads it."""
    if settings.default.derandomize or PROFILE == "debug":
        return
    given = config.getoption("hypothesis_seed", default=None)
    seed = given or os.environ.get("FMA_HYPOTHESIS_SEED")
    if seed is None and PROFILE in ("nightly", "explore"):
        seed = str(random.SystemRandom().randrange(2**32))
    if seed is not None:
        config.option.hypothesis_seed = str(seed)
        os.environ["FMA_HYPOTHESIS_SEED"] = str(seed)


def pytest_report_header(config: pytest.Config) -> str:
    seed = os.environ.get("FMA_HYPOTHESIS_SEED")
    replay = f"; replay with --hypothesis-seed={seed}" if seed else ""
    return f"hypothesis profile: {PROFILE}{replay}"


def pytest_sessionstart(session: pytest.Session) -> None:
    """Print the session seed of a random profile even under ``-q`` (which hides the header)."""
    seed = os.environ.get("FMA_HYPOTHESIS_SEED")
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if seed and reporter is not None and session.config.option.verbose < 0:
        reporter.write_line(f"hypothesis profile: {PROFILE}; replay with --hypothesis-seed={seed}")
