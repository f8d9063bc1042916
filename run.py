#!/usr/bin/env python
"""pymarl-compatible entry point: python run.py --config=ALG --env-config=ENV with key=value ..."""
import os
import sys

_ROOT = os.path.dirname(os.path.abspath(__file__))
for _path in (os.path.join(_ROOT, "src"), _ROOT):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from marlkit.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
