"""``python -m perf``: the same as ``python perf/run.py``."""

import sys

from perf.run import main

sys.exit(main())
