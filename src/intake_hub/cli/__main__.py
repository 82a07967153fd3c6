"""`python -m intake_hub.cli`: the same as the `intake-hub` command."""

import sys

from intake_hub.cli import main

sys.exit(main())
