"""Stock QMIX next to pymarl2 QMIX on the non-monotonic matrix game (docs/reproduction/remix.md,
"Matrix game"): the learning-test settings of tests/test_wqmix.py, seeds 1-5, greedy test return
at the end of each run.

    python scripts/matrix_game_qmix.py [--results results/matrix_game_qmix]
"""
import argparse
import contextlib
import io
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "src"), ROOT]

from marlkit.experiment import run  # noqa: E402

LEARN = dict(runner="parallel", batch_size_run=8, batch_size=32, buffer_size=128, t_max=3000,
             epsilon_anneal_time=1000, lr=0.005, test_interval=1000, test_nepisode=8,
             log_interval=1000, runner_log_interval=1000, learner_log_interval=1000)
ALGS = (("qmix", {}), ("remix_qmix", {"target_update_interval": 40}))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", default=os.path.join("results", "matrix_game_qmix"),
                        help="local_results_path of the runs")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    opts = parser.parse_args(argv)
    os.chdir(ROOT)
    final = {}
    for alg, extra in ALGS:
        for seed in opts.seeds:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                run_dir = run(alg, "matrix_game", dict(LEARN, seed=seed, local_results_path=opts.results, **extra))
            with open(os.path.join(run_dir, "metrics.json")) as f:
                values = json.load(f)["test_return_mean"]["values"]
            final.setdefault(alg, []).append(values[-1])
            print(alg, seed, values, flush=True)
    print(final)


if __name__ == "__main__":
    main()
