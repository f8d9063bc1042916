"""marlkit: cooperative-MARL paper plugins on the EPyMARL host (see README.md)."""
import os

__version__ = "0.1.0"

# Repository root: holds config/, plugins/ and results/ (the package lives in <root>/src/marlkit).
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
