"""Test-wide set-up: the example plugin is loaded alongside the shipped ones."""
import os

os.environ.setdefault("MARLKIT_PLUGINS", os.path.join(os.path.dirname(os.path.abspath(__file__)), "example_plugins"))
os.environ.setdefault("OMP_NUM_THREADS", "1")
