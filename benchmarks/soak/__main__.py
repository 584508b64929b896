"""``python -m benchmarks.soak``: see :mod:`benchmarks.soak.run`."""

import sys

from .run import main

sys.exit(main())
