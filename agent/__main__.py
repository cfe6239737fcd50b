"""`python -m verity` is the `verity` command."""

import sys

from verity.cli import main

sys.exit(main())
