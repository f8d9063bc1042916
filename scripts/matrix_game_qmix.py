import sys, os, json, contextlib, io
sys.path[:0] = ["/work/main/src", "/work/main"]
os.chdir("/work/main")
from marlkit.experiment import run
LEARN = dict(runner="parallel", batch_size_run=8, batch_size=32, buffer_size=128, t_max=3000,
             epsilon_anneal_time=1000, lr=0.005, test_interval=1000, test_nepisode=8,
             log_interval=1000, runner_log_interval=1000, learner_log_interval=1000)
out = {}
for alg, extra in [("qmix", {}), ("remix_qmix", {"target_update_interval": 40})]:
    for seed in range(1, 6):
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            d = run(alg, "matrix_game", dict(LEARN, seed=seed, local_results_path="/tmp/stockmg", **extra))
        m = json.load(open(os.path.join(d, "metrics.json")))["test_return_mean"]["values"]
        out.setdefault(alg, []).append(m[-1])
        print(alg, seed, m, flush=True)
print(out)
