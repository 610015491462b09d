"""`python -m venue_operator.cli` is `venue-operator`."""

import sys

from venue_operator.cli.main import main

sys.exit(main())
