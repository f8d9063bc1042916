"""``python -m marlkit.tabular_bn``: the DAG-BN tabular study, kept at its documented command.

The study is paper code and lives in its plugin (plugins/dagbn/tabular_bn.py, also runnable as
``python -m plugins.dagbn.tabular_bn`` from the repository root); this module only forwards to it.
"""
import runpy
import sys

from . import REPO_ROOT

if __name__ == "__main__":
    sys.path.insert(0, REPO_ROOT)
    runpy.run_module("plugins.dagbn.tabular_bn", run_name="__main__", alter_sys=True)
