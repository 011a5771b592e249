"""What the end-to-end tests share: the cached vLLM environment and the tiny model built with
it, and, for the tests that need it, the real control plane — the session's cluster and an
operator test's :class:`~tests.integration.operator.harness.World`, as the integration tests
have them (the cluster starts only for a test that asks)."""

from tests.e2e.test_launcher_vllm import tiny_model, vllm_python  # noqa: F401
from tests.integration.conftest import api, bin_dir, namespace, testcluster  # noqa: F401
from tests.integration.operator.conftest import (  # noqa: F401
    fma_crds,
    pytest_runtest_makereport,
    world,
)
