"""``python -m eoslib``: see :mod:`eoslib.cli`."""

import sys

from eoslib.cli import main

sys.exit(main())
