"""`python -m agent` is the `verity` command."""

import sys

from agent.cli import main

sys.exit(main())
