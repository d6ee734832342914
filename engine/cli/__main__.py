"""`python -m engine.cli ...`: the same commands as `verl-studio` (without `serve`)."""

import sys

from engine.cli import main

sys.exit(main())
