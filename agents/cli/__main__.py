"""``python -m agents.cli``: the ``continust`` command line."""

import sys

from agents.cli.commands import main

sys.exit(main())
