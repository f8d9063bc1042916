#!/usr/bin/env bash
# The scaled ReMIX reproduction behind docs/reproduction/remix.md (2 jobs at a time by default).
#   scripts/reproduce_remix.sh                 # every stage, in this order
#   STAGES="p0 wmin" scripts/reproduce_remix.sh
# Scaling for 2 CPU cores (paper: batch 128, epsilon anneal 100k, 1.05M steps on predator-prey):
# batch 32 episodes and epsilon anneal 50k (the original WQMIX release's values); 150k env steps
# at punishment -2, 100k at 0 and for the w_min study (compare with --until 100000); stock QMIX
# 50k steps (1 env, slower); SMAX 3s_vs_5z 20k steps.
# Figures: the commands in docs/reproduction/remix.md.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
W=${WORKERS:-2}
STAGES=${STAGES:-"p2 p0 wmin stock smax"}
LOGS="test_interval=10000 log_interval=10000 runner_log_interval=10000 learner_log_interval=10000"
PP="batch_size=32 epsilon_anneal_time=50000 $LOGS"
ALGS="remix_pp ow_qmix_pp cw_qmix_pp remix_qmix_pp"
sweep() { $PY -m marlkit.sweep --workers "$W" "$@"; }
for stage in $STAGES; do
  case $stage in
    # punishment -2, then 0: ReMIX vs OW-QMIX vs CW-QMIX vs pymarl2 QMIX
    p2) sweep --name remix_pp_p2 --configs $ALGS --env-configs predator_prey_p2 with $PP t_max=150000 ;;
    p0) sweep --name remix_pp_p0 --configs $ALGS --env-configs predator_prey with $PP t_max=100000 ;;
    # w_min sensitivity (Fig. 4 analogue) at punishment -2; w_min 0.1 is stage p2
    wmin) for w in 0.5 0.8; do sweep --name remix_wmin_$w --configs remix_pp --env-configs predator_prey_p2 with $PP t_max=100000 w_min=$w; done ;;
    # stock host QMIX (EPyMARL defaults: 1 env, batch 32, 1-step targets)
    stock) sweep --name stock_qmix_pp --configs qmix --env-configs predator_prey_p2 predator_prey with t_max=50000 $LOGS ;;
    # SMAX 3s_vs_5z with the SMAC settings (w = 0.5)
    smax) sweep --name remix_3s_vs_5z --configs remix remix_qmix ow_qmix --env-configs smax with env_args.map_name=3s_vs_5z t_max=${SMAX_T_MAX:-20000} ;;
    *) echo "unknown stage '$stage' (p2 p0 wmin stock smax)" >&2; exit 2 ;;
  esac
done
