"""``python -m marlkit.analysis``: see the package docstring."""
import sys

from .cli import main

sys.exit(main())
