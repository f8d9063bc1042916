#!/usr/bin/env bash
# The scaled Suggestion Sharing reproduction behind docs/reproduction/ss.md (paper 002): SS against
# its baselines on one PPO core, at Table 2's settings where the budget allows.
#   scripts/reproduce_ss.sh                         # every stage, in this order
#   STAGES="pred2 pred8" WORKERS=2 scripts/reproduce_ss.sh
# Settings (see ss.md): Table 1-2 learning rates, networks and rho from config/envs/*.yaml, the
# paper's predation state (no time feature), K = 3, 8 episodes per update (Algorithm 1: one);
# budgets: 60k steps (2-agent predation), 38.4k (8-agent), 36k (Cleanup/Harvest, scaled: 3 agents,
# (128, 64) networks, learning rates 1e-3). Stage `diag` holds the single-seed diagnostic runs of the
# C-C analysis. Stage `long` runs 2-agent predation for 1M steps at lr 1e-3 (Fig. 3 at length);
# `nav` (200k steps) and `ssdlong` (100k steps) run navigation and Cleanup/Harvest at lr 1e-3.
# Results go to results/repro/<stage>/ and results/diag/<run>/.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
W=${WORKERS:-2}
STAGES=${STAGES:-"diag pred2 pred2all pred8 protocols ssd long nav ssdlong figures"}
SEEDS=${SEEDS:-4}   # the session ran 4 seeds of predation (3 first, then a 4th), 2 of Cleanup/Harvest
LSEEDS=${LSEEDS:-3} # seeds of the 1M-step SS runs (everyone a neighbour, rho 1); independent PPO ran 2, the rest 1
ALL="ss ss_rho0 ss_ippo vs vps ps cl imr"
L2="log_interval=2400 runner_log_interval=2400 learner_log_interval=2400 test_interval=100000000"
LR3="ss_actor_lr=0.001 ss_critic_lr=0.001"
L8="log_interval=1920 runner_log_interval=1920 learner_log_interval=1920 test_interval=100000000"
LD="log_interval=4800 runner_log_interval=4800 learner_log_interval=4800 test_interval=100000000"
sweep() { $PY -m marlkit.sweep --workers "$W" "$@"; }
diag() {  # diag NAME STEPS key=value...: one seed of SS-core runs on 2-agent predation
  local name=$1 steps=$2; shift 2
  local alg=ss; [[ $name == *ippo* ]] && alg=ss_ippo
  $PY run.py --config=$alg --env-config=coop_predation with seed=1 env_args.n_agents=2 t_max=$steps $LD \
    local_results_path=results/diag/$name "$@"
}
R=results/repro
for stage in $STAGES; do
  case $stage in
    diag)  # why SS stays below C-C ~ 1 (ss.md, "The C-C gap"): protocol, rho, time feature, learning rate
           # (run before advantages were recomputed per iteration, hence ss_advantages=update)
      diag paper_ss 100000 ss_advantages=update
      diag paper_ss_all 100000 ss_advantages=update ss_protocol=all
      diag paper_ippo 100000 ss_advantages=update
      diag time_ss_all 100000 ss_advantages=update ss_protocol=all env_args.time_in_state=True
      diag rho1_env 200000 ss_advantages=update ss_rho=1.0
      diag rho1_all 200000 ss_advantages=update ss_rho=1.0 ss_protocol=all
      diag rho1_env_time 200000 ss_advantages=update ss_rho=1.0 env_args.time_in_state=True
      diag b1_rho1_all 60000 ss_advantages=update ss_rho=1.0 ss_protocol=all batch_size_run=1 buffer_size=1 batch_size=1
      diag lr3_all_rho1 150000 ss_advantages=update ss_protocol=all ss_rho=1.0 ss_actor_lr=0.001 ss_critic_lr=0.001
      diag lr3_all_rho01 150000 ss_advantages=update ss_protocol=all ss_rho=0.1 ss_actor_lr=0.001 ss_critic_lr=0.001
      diag lr3_env_rho1 150000 ss_advantages=update ss_rho=1.0 ss_actor_lr=0.001 ss_critic_lr=0.001
      LD="log_interval=9600 runner_log_interval=9600 learner_log_interval=9600 test_interval=100000000"
      diag long_all_rho1 600000 ss_protocol=all ss_rho=1.0 ss_actor_lr=0.001 ss_critic_lr=0.001 ;;
    pred2)  # Figs. 1, 3, 4, 5 with two predators, every method at the presets (env graph, rho 0.1)
      sweep --name ss_pred2 --configs $ALL --env-configs coop_predation --n-seeds $SEEDS with env_args.n_agents=2 \
        t_max=60000 $L2 local_results_path=$R/pred2 ;;
    pred2all)  # SS with every agent a neighbour and rho = 1, and its rho = 0 ablation
      sweep --name ss_pred2_all --configs ss --env-configs coop_predation --n-seeds $SEEDS with env_args.n_agents=2 \
        t_max=60000 ss_protocol=all ss_rho=1.0 $L2 local_results_path=$R/pred2_all
      sweep --name ss_pred2_all0 --configs ss_rho0 --env-configs coop_predation --n-seeds $SEEDS with env_args.n_agents=2 \
        t_max=60000 ss_protocol=all $L2 local_results_path=$R/pred2_all ;;
    pred8)  # Figs. 1, 2, 4 with eight predators
      sweep --name ss_pred8 --configs $ALL --env-configs coop_predation --n-seeds $SEEDS with t_max=38400 $L8 \
        local_results_path=$R/pred8 ;;
    protocols)  # Appendix A.4 / Fig. 8 on 8-agent predation: 2 random neighbours; sharing every 2nd update
      sweep --name ss_fig8a --configs ss --env-configs coop_predation --n-seeds $SEEDS with t_max=38400 ss_protocol=random \
        ss_random_m=2 $L8 local_results_path=$R/fig8a
      sweep --name ss_fig8b --configs ss --env-configs coop_predation --n-seeds $SEEDS with t_max=38400 ss_share_every=2 \
        $L8 local_results_path=$R/fig8b ;;
    ssd)  # Cleanup and Harvest at the paper's grid sizes, scaled: 3 agents, (128, 64) networks, lr 1e-3
      for env in cleanup harvest; do
        sweep --name ss_$env --configs ss ss_ippo cl imr --env-configs $env --n-seeds 2 with env_args.n_agents=3 \
          "ss_actor_hidden=[128,64]" "ss_critic_hidden=[128,64]" ss_actor_lr=0.001 ss_critic_lr=0.001 t_max=36000 \
          $L2 local_results_path=$R/ssd
      done ;;
    long)  # Fig. 3 at length: 2-agent predation, 1M steps, lr 1e-3 (10x Table 2) in every run. SS with every
           # agent a neighbour and rho = 1 against independent PPO and CL; SS at Table 2's graph and rho
           # (lr 1e-3, and the literal lr 1e-4, one seed each); SS with everyone and rho = 3 (one seed)
      LL="env_args.n_agents=2 t_max=1000000 log_interval=9600 runner_log_interval=9600 learner_log_interval=9600"
      LL="$LL test_interval=96000 test_greedy=True test_nepisode=32"  # greedy test episodes every 96k steps
      sweep --name ss_long_all --configs ss --env-configs coop_predation --n-seeds $LSEEDS with $LL $LR3 \
        ss_protocol=all ss_rho=1.0 local_results_path=$R/pred2_long
      sweep --name ss_long_ippo --configs ss_ippo --env-configs coop_predation --n-seeds 2 with $LL $LR3 local_results_path=$R/pred2_long
      sweep --name ss_long_cl --configs cl --env-configs coop_predation --seeds 1 with $LL $LR3 local_results_path=$R/pred2_long
      sweep --name ss_long_env --configs ss --env-configs coop_predation --seeds 1 with $LL $LR3 local_results_path=$R/pred2_long_env
      sweep --name ss_long_lit --configs ss --env-configs coop_predation --seeds 1 with $LL local_results_path=$R/pred2_long_lit
      sweep --name ss_long_rho3 --configs ss --env-configs coop_predation --seeds 1 with $LL $LR3 ss_protocol=all ss_rho=3.0 \
        local_results_path=$R/pred2_long_rho ;;
    nav)  # cooperative navigation, 3 seeds, 200k steps, lr 1e-3 (Table 2: actor 1e-5, critic 1e-4), rho 1 (Table 2)
      sweep --name ss_nav --configs ss ss_rho0 ss_ippo vs vps ps cl --env-configs coop_navigation --n-seeds 3 with \
        t_max=200000 $LR3 log_interval=8000 runner_log_interval=8000 learner_log_interval=8000 test_interval=100000000 \
        local_results_path=$R/nav ;;
    ssdlong)  # Cleanup and Harvest, 100k steps, scaled as in `ssd`: SS and every baseline, 3 seeds
      for env in cleanup harvest; do
        sweep --name ss_${env}_long --configs $ALL --env-configs $env --n-seeds 3 with env_args.n_agents=3 \
          "ss_actor_hidden=[128,64]" "ss_critic_hidden=[128,64]" $LR3 t_max=100000 \
          log_interval=6000 runner_log_interval=6000 learner_log_interval=6000 test_interval=100000000 local_results_path=$R/ssd_long
      done ;;
    figures)  # the figures and tables of ss.md (after the training stages)
      F=docs/reproduction/figures
      A="$PY -m marlkit.analysis --smooth 3"
      for m in collective_return_mean cc_rate_mean suggest_coop_share suggest_mse; do
        $A --results $R/pred2 --env coop_predation --algs $ALL --metric $m --out $F/ss_pred2_$m.png
        $A --results $R/pred2_all --env coop_predation --algs ss ss_rho0 --metric $m --out $F/ss_pred2all_$m.png
      done
      $A --results $R/pred8 --env coop_predation --algs $ALL --metric collective_return_mean --out $F/ss_pred8_collective_return_mean.png
      $A --results $R/pred8 --env coop_predation --algs $ALL --metric coop_rate_mean --out $F/ss_pred8_coop_rate_mean.png
      # Fig. 8: each protocol next to copies of the default SS runs, labelled by the varied key
      for v in fig8a fig8b; do
        rm -rf $R/$v/sacred/ss/coop_predation/10*
        for d in $R/pred8/sacred/ss/coop_predation/[0-9]*; do cp -r "$d" $R/$v/sacred/ss/coop_predation/10$(basename "$d"); done
      done
      $A --results $R/fig8a --env coop_predation --algs ss --metric collective_return_mean --label-by ss_protocol --out $F/ss_pred8_fig8a_random2.png
      $A --results $R/fig8b --env coop_predation --algs ss --metric collective_return_mean --label-by ss_share_every --out $F/ss_pred8_fig8b_every2.png
      for env in cleanup harvest; do
        $A --results $R/ssd --env $env --algs ss ss_ippo cl imr --metric collective_return_mean --out $F/ss_${env}_collective_return_mean.png
      done
      $A --results $R/ssd --env cleanup --algs ss ss_ippo cl imr --metric waste_density_mean --out $F/ss_cleanup_waste_density_mean.png
      # the diagnostic runs (one seed each): rho and protocol at lr 1e-3, and the long everyone/rho 1 run
      D=results/diag_figures
      rm -rf $D && mkdir -p $D/rho/sacred/ss/coop_predation $D/protocol/sacred/ss/coop_predation
      cp -r results/diag/lr3_all_rho1/sacred/ss/coop_predation/1 $D/rho/sacred/ss/coop_predation/1
      cp -r results/diag/lr3_all_rho01/sacred/ss/coop_predation/1 $D/rho/sacred/ss/coop_predation/2
      cp -r results/diag/lr3_all_rho1/sacred/ss/coop_predation/1 $D/protocol/sacred/ss/coop_predation/1
      cp -r results/diag/lr3_env_rho1/sacred/ss/coop_predation/1 $D/protocol/sacred/ss/coop_predation/2
      for m in cc_rate_mean suggest_mse; do
        $A --results $D/rho --env coop_predation --algs ss --metric $m --label-by ss_rho --out $F/ss_diag_rho_$m.png
        $A --results $D/protocol --env coop_predation --algs ss --metric $m --label-by ss_protocol --out $F/ss_diag_protocol_$m.png
      done
      $A --results results/diag/long_all_rho1 --env coop_predation --algs ss --metric cc_rate_mean --out $F/ss_diag_long_cc_rate_mean.png
      $A --results $R/nav --env coop_navigation --metric collective_return_mean --out $F/ss_nav_collective_return_mean.png
      $PY scripts/ss_summary.py --results $R/pred2 $R/pred2_all $R/pred8 $R/fig8a $R/fig8b $R/ssd $R/nav --out $F/ss_final_collective_return.md
      $PY scripts/ss_summary.py --results $R/pred2 $R/pred2_all --metric cc_rate_mean --out $F/ss_final_cc_rate.md
      # stage long (Fig. 3 at 1M steps): SS everyone/rho 1 against independent PPO and CL; then the SS variants
      for m in cc_rate_mean collective_return_mean; do
        $A --results $R/pred2_long --env coop_predation --algs ss ss_ippo cl --metric $m --out $F/ss_long_$m.png
      done
      for m in suggest_mse suggest_coop_share kappa_mean; do
        $A --results $R/pred2_long --env coop_predation --algs ss --metric $m --out $F/ss_long_$m.png
      done
      V=results/long_figures  # copies, so that one --label-by key tells the variants apart
      rm -rf $V && mkdir -p $V/rho/sacred/ss/coop_predation $V/lr/sacred/ss/coop_predation
      n=0
      for d in $R/pred2_long/sacred/ss/coop_predation/[0-9]* $R/pred2_long_env/sacred/ss/coop_predation/[0-9]* \
               $R/pred2_long_rho/sacred/ss/coop_predation/[0-9]*; do
        n=$((n + 1)); cp -r "$d" $V/rho/sacred/ss/coop_predation/$n
      done
      n=0
      for d in $R/pred2_long_env/sacred/ss/coop_predation/[0-9]* $R/pred2_long_lit/sacred/ss/coop_predation/[0-9]*; do
        n=$((n + 1)); cp -r "$d" $V/lr/sacred/ss/coop_predation/$n
      done
      for m in cc_rate_mean suggest_mse; do
        $A --results $V/rho --env coop_predation --algs ss --metric $m --label-by ss_rho --out $F/ss_long_rho_$m.png
      done
      $A --results $V/lr --env coop_predation --algs ss --metric cc_rate_mean --label-by ss_actor_lr --out $F/ss_long_lr_cc_rate_mean.png
      LONG="$R/pred2_long $R/pred2_long_env $R/pred2_long_lit $R/pred2_long_rho"
      for last in 3 10; do  # the last 3 logged points (the page's convention) and the last 10 (96k steps)
        $PY scripts/ss_summary.py --results $LONG --metric cc_rate_mean --last $last --out $F/ss_long_cc_rate_last$last.md
        $PY scripts/ss_summary.py --results $LONG --last $last --out $F/ss_long_collective_return_last$last.md
      done
      $PY scripts/ss_summary.py --results $LONG --metric test_cc_rate_mean --filter test_greedy=True --out $F/ss_long_greedy_cc_rate.md
      # stage ssdlong
      for env in cleanup harvest; do
        $A --results $R/ssd_long --env $env --algs $ALL --metric collective_return_mean --out $F/ss_${env}_long_collective_return_mean.png
      done
      $A --results $R/ssd_long --env cleanup --algs $ALL --metric waste_density_mean --out $F/ss_cleanup_long_waste_density_mean.png
      $PY scripts/ss_summary.py --results $R/ssd_long --out $F/ss_ssd_long_collective_return.md ;;
    *) echo "unknown stage '$stage' (diag pred2 pred2all pred8 protocols ssd long nav ssdlong figures)" >&2; exit 2 ;;
  esac
done
