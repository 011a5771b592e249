"""``python -m fma.testcluster.podrunner --config FILE``: the pod runner process."""

import sys

from fma.testcluster.podrunner.runner import main

sys.exit(main())
