#!/usr/bin/env bash
# The scaled Suggestion Sharing reproduction behind docs/reproduction/ss.md (paper 002): SS against
# its baselines on one PPO core, 3 seeds.
#   scripts/reproduce_ss.sh                    # every stage, in this order
#   STAGES="pred2 pred8" WORKERS=2 scripts/reproduce_ss.sh
# The session ran every stage but ssd (time).
# Scaling for 2 shared CPU cores (see ss.md): very short runs (8k-12k env steps), learning rates raised to 1e-3
# for every method (Table 2: 1e-5..1e-4 actor, Table 1: 1e-4 critic), 8 episodes per update, and the
# episode time appended to the predation state (every method alike).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
W=${WORKERS:-3}
STAGES=${STAGES:-"pred2 pred2rho pred8 nav protocols pred8b navb figures"}
ALL="ss ss_rho0 ss_ippo vs vps ps cl imr"
LOG="log_interval=4000 runner_log_interval=960 learner_log_interval=960 test_interval=1000000"
SCALED="ss_actor_lr=0.001 ss_critic_lr=0.001 $LOG"
PRED="env_args.time_in_state=True $SCALED"
sweep() { $PY -m marlkit.sweep --workers "$W" "$@"; }
for stage in $STAGES; do
  case $stage in
    pred2) sweep --name ss_pred2 --configs $ALL --env-configs coop_predation --n-seeds 3 with env_args.n_agents=2 t_max=12000 $PRED ;;
    # Variants of SS go to their own results folders (results/ss_*), so curves can be labelled by
    # the varied key next to copies of the default runs (see ss.md for the figure commands).
    pred2rho)  # SS with a larger rho than Table 2's 0.1
           sweep --name ss_pred2_rho3 --configs ss --env-configs coop_predation --n-seeds 3 with env_args.n_agents=2 t_max=12000 ss_rho=3.0 local_results_path=results/ss_rho $PRED ;;
    pred8) sweep --name ss_pred8 --configs ss ss_rho0 ss_ippo ps cl --env-configs coop_predation --n-seeds 3 with t_max=8000 $PRED ;;
    # the other baselines on 8-agent predation and navigation (run last for time)
    pred8b) sweep --name ss_pred8b --configs vs vps imr --env-configs coop_predation --n-seeds 3 with t_max=8000 $PRED ;;
    navb) sweep --name ss_navb --configs ss_rho0 vs vps --env-configs coop_navigation --n-seeds 3 with t_max=12000 batch_size_run=4 buffer_size=4 batch_size=4 $SCALED ;;
    # no IMR on navigation (Section 5.2: no cooperative act to reward)
    nav) sweep --name ss_nav --configs ss ss_ippo ps cl --env-configs coop_navigation --n-seeds 3 with t_max=12000 batch_size_run=4 buffer_size=4 batch_size=4 $SCALED ;;
    # Appendix A.4 / Fig. 8 on 8-agent predation: 2 random neighbours; sharing every 2nd update
    protocols) sweep --name ss_pred8_random2 --configs ss --env-configs coop_predation --n-seeds 3 with t_max=8000 ss_protocol=random ss_random_m=2 local_results_path=results/ss_fig8a $PRED
               sweep --name ss_pred8_every2 --configs ss --env-configs coop_predation --n-seeds 3 with t_max=8000 ss_share_every=2 local_results_path=results/ss_fig8b $PRED ;;
    # Cleanup / Harvest at the paper's sizes with 3 agents and C. Predation's network sizes
    ssd) for env in cleanup harvest; do
           sweep --name ss_$env --configs ss ss_ippo imr --env-configs $env --n-seeds 2 with env_args.n_agents=3 t_max=20000 \
             "ss_actor_hidden=[128,64]" "ss_critic_hidden=[128,64]" $SCALED
         done ;;
    # the figures and tables of ss.md (run after the training stages)
    figures)
      F=docs/reproduction/figures
      # copies of the default runs next to each variant, so one figure can label curves by the varied key
      copy() {  # copy ALG N DEST: the completed default runs of ALG with N agents, as ids 10<id>
        for d in results/sacred/$1/coop_predation/[0-9]*; do
          if $PY -c "import json,sys; c=json.load(open('$d/config.json')); r=json.load(open('$d/run.json')); sys.exit(0 if c['env_args']['n_agents']==$2 and r['status']=='COMPLETED' else 1)"; then
            mkdir -p $3/sacred/$1/coop_predation && cp -r "$d" $3/sacred/$1/coop_predation/10$(basename $d)
          fi
        done
      }
      rm -rf results/ss_rho/sacred/ss/coop_predation/10* results/ss_rho/sacred/ss_rho0 results/ss_fig8[ab]/sacred/ss/coop_predation/10*
      copy ss 2 results/ss_rho; copy ss_rho0 2 results/ss_rho; copy ss 8 results/ss_fig8a; copy ss 8 results/ss_fig8b
      A="$PY -m marlkit.analysis --smooth 3"
      for m in collective_return_mean cc_rate_mean; do
        $A --env coop_predation --algs $ALL --metric $m --filter env_args.n_agents=2 --out $F/ss_pred2_$m.png
      done
      for m in collective_return_mean coop_rate_mean; do
        $A --env coop_predation --algs $ALL --metric $m --filter env_args.n_agents=8 --out $F/ss_pred8_$m.png
      done
      NAV=$(ls results/sacred | grep -E '^(ss|ss_rho0|ss_ippo|vs|vps|ps|cl)$' | while read a; do [ -d results/sacred/$a/coop_navigation ] && echo $a; done | tr '\n' ' ')
      $A --env coop_navigation --algs $NAV --metric collective_return_mean --out $F/ss_nav_collective_return_mean.png
      for m in collective_return_mean cc_rate_mean suggest_coop_share suggest_mse; do
        $A --results results/ss_rho --env coop_predation --algs ss ss_rho0 --metric $m --label-by ss_rho --out $F/ss_pred2_rho_$m.png
      done
      $A --results results/ss_fig8a --env coop_predation --algs ss --metric collective_return_mean --label-by ss_protocol --out $F/ss_pred8_fig8a_random2.png
      $A --results results/ss_fig8b --env coop_predation --algs ss --metric collective_return_mean --label-by ss_share_every --out $F/ss_pred8_fig8b_every2.png
      $PY scripts/ss_summary.py --results results results/ss_rho results/ss_fig8a results/ss_fig8b --out $F/ss_final_collective_return.md
      $PY scripts/ss_summary.py --results results results/ss_rho --metric cc_rate_mean --out $F/ss_final_cc_rate.md ;;
    *) echo "unknown stage '$stage' (pred2 pred2rho pred8 nav protocols pred8b navb ssd figures)" >&2; exit 2 ;;
  esac
done
