#!/usr/bin/env bash
# The scaled RGMComm reproduction behind docs/reproduction/rgmcomm.md (WORKERS jobs at a time).
#   scripts/reproduce_rgmcomm.sh                       # every stage, in this order
#   STAGES="tag2 maze" scripts/reproduce_rgmcomm.sh
# Scaling for 2 shared CPU cores (paper: 300k episodes = 7.5M steps on predator-prey N = 2, a
# 1200-unit generator, K = 256): MPE_T_MAX env steps on MPE (default 50k; the tag3, tag6, spread3,
# tag3labels, spread3comm and spread3labels results used MPE_T_MAX=80000; spread3long runs
# LONG_T_MAX = 400k), 20k on the maze, generator
# with 256 (MPE) or 128 (maze) units, K1 = 128 samples, K2 = 128 (MPE) / 64 (maze) partners, 3 seeds.
# Stages are independent, so they can run as parallel chains (STAGES="tag2" ... & STAGES="maze" ...).
# Figures: the commands in docs/reproduction/rgmcomm.md.
set -uo pipefail
cd "$(dirname "$0")/.."
# this checkout's marlkit (not another installed copy): marlkit.sweep runs its jobs in the root of
# the repository its marlkit was imported from
export PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python}
W=${WORKERS:-1}
OUT=${OUT:-results/rgmcomm}
ALL="tag2 tag2fo maze mazefo mazeraw ablation labels spread3 tag3 tag6 comm rawstudy rawcd spread3long tag3labels spread3comm spread3labels"
STAGES=${STAGES:-$ALL}
LOGS="test_interval=10000 log_interval=10000 runner_log_interval=10000 learner_log_interval=10000 test_nepisode=32 local_results_path=$OUT"
MPE="t_max=${MPE_T_MAX:-50000} $LOGS rgm_gen_hidden=256 rgm_k1=128 rgm_k2=128"
# the long cooperative-navigation runs (stage spread3long): LONG_T_MAX steps (default 400k = 5x the
# 80k of spread3), otherwise the same settings
LONG="t_max=${LONG_T_MAX:-400000} $LOGS rgm_gen_hidden=256 rgm_k1=128 rgm_k2=128"
MAZE="t_max=20000 epsilon_anneal_time=8000 runner=parallel batch_size_run=8 test_interval=2000 log_interval=2000 runner_log_interval=2000 learner_log_interval=2000 test_nepisode=64 local_results_path=$OUT rgm_gen_hidden=128 rgm_k1=128 rgm_k2=64"
# The maze again on raw rewards (the stock QMIX config standardises them), 12k steps, seeds 1 2
# (stage mazeraw); stage rawstudy repeats it on RAW_SEEDS with the Fig. 7 and Fig. 4 variants.
RAW="t_max=12000 epsilon_anneal_time=6000 standardise_rewards=False runner=parallel batch_size_run=8 test_interval=2000 log_interval=2000 runner_log_interval=2000 learner_log_interval=2000 test_nepisode=64 local_results_path=${OUT}_raw rgm_gen_hidden=128 rgm_k1=128 rgm_k2=64"
RAW_SEEDS=${RAW_SEEDS:-"1 2 3 4 5 6"}
sweep() { $PY -m marlkit.sweep --workers "$W" "$@"; }
for stage in $STAGES; do
  case $stage in
    # predator-prey, 2 predators: RGMComm (4 labels) vs partial observation vs full observation
    tag2) sweep --name rgm_tag2 --configs rgmcomm_maddpg maddpg --env-configs mpe_tag with $MPE ;;
    tag2fo) sweep --name rgm_tag2_fo --configs maddpg --env-configs mpe_tag with $MPE env_args.observe_all=True ;;
    # the maze: RGMComm on QMIX (4 labels) vs QMIX partial / full observation
    maze) sweep --name rgm_maze --configs rgmcomm_qmix qmix --env-configs maze with $MAZE ;;
    mazefo) sweep --name rgm_maze_fo --configs qmix --env-configs maze with $MAZE env_args.observe_all=True ;;
    mazeraw) sweep --name rgm_maze_raw --seeds 1 2 --configs rgmcomm_qmix qmix --env-configs maze with $RAW
             sweep --name rgm_maze_raw_fo --seeds 1 2 --configs qmix --env-configs maze with $RAW env_args.observe_all=True ;;
    # Fig. 7: normalisation softmax / none on the maze (tanh is stage maze)
    ablation) for f in softmax none; do sweep --name rgm_maze_$f --configs rgmcomm_qmix --env-configs maze with $MAZE rgm_norm=$f; done ;;
    # Fig. 4 / Fig. 6: alphabet size on predator-prey N = 2 (4 labels is stage tag2)
    labels) for m in 2 16; do sweep --name rgm_tag2_m$m --configs rgmcomm_maddpg --env-configs mpe_tag with $MPE comm_labels=$m; done ;;
    # cooperative navigation, 3 agents (Fig. 5 / 6: return and epsilon vs the gap with 4 and 16
    # labels), one seed after another
    spread3) for s in ${SPREAD3_SEEDS:-1 2 3}; do
               sweep --name rgm_spread3 --seeds $s --configs maddpg rgmcomm_maddpg --env-configs mpe_spread with $MPE
               sweep --name rgm_spread3_fo --seeds $s --configs maddpg --env-configs mpe_spread with $MPE env_args.observe_all=True
               sweep --name rgm_spread3_m16 --seeds $s --configs rgmcomm_maddpg --env-configs mpe_spread with $MPE comm_labels=16
             done ;;
    # predator-prey with 3 or 6 predators, one seed after another (a late stop keeps whole seeds):
    # partial observation, RGMComm (4 labels) and full observation first, then the (costlier)
    # CommNet and TarMAC
    tag3|tag6) n=${stage#tag}
          for s in ${TAG_SEEDS:-1 2 3}; do
            sweep --name rgm_$stage --seeds $s --configs maddpg rgmcomm_maddpg --env-configs mpe_tag with $MPE env_args.n_predators=$n
            sweep --name rgm_${stage}_fo --seeds $s --configs maddpg --env-configs mpe_tag with $MPE env_args.n_predators=$n env_args.observe_all=True
          done
          for s in ${TAG_SEEDS:-1 2 3}; do
            sweep --name rgm_${stage}_comm --seeds $s --configs commnet_maddpg tarmac_maddpg --env-configs mpe_tag with $MPE env_args.n_predators=$n
          done ;;
    comm) sweep --name rgm_tag2_comm --configs commnet_maddpg tarmac_maddpg --env-configs mpe_tag with $MPE ;;
    # raw-reward maze study: no messages, full observation, RGMComm with tanh / softmax / none
    # (Fig. 7) and with 2 / 16 labels (Fig. 4; 4 labels = tanh); results in ${OUT}_raw
    rawstudy) for s in $RAW_SEEDS; do
                sweep --name rgm_maze_raw_po --seeds $s --configs qmix --env-configs maze with $RAW
                sweep --name rgm_maze_raw_fo --seeds $s --configs qmix --env-configs maze with $RAW env_args.observe_all=True
                for f in tanh softmax none; do sweep --name rgm_maze_raw_$f --seeds $s --configs rgmcomm_qmix --env-configs maze with $RAW rgm_norm=$f; done
                for m in 2 16; do sweep --name rgm_maze_raw_m$m --seeds $s --configs rgmcomm_qmix --env-configs maze with $RAW comm_labels=$m; done
              done ;;
    # the Fig. 7 ablation again with clustering weight 1e-2 (seeds 1-3), in ${OUT}_raw_cd2 (the
    # summary does not tell rgm_cd_weight apart, so these runs get their own folder)
    rawcd) for s in 1 2 3; do for f in tanh softmax none; do
             sweep --name rgm_maze_raw_cd2_$f --seeds $s --configs rgmcomm_qmix --env-configs maze with ${RAW/_raw /_raw_cd2 } rgm_norm=$f rgm_cd_weight=0.01
           done; done ;;
    # cooperative navigation N = 3 trained 5x longer (LONG_T_MAX): does full observation pull away
    # from partial observation, and does RGMComm (16 labels) close that gap? One seed after another
    spread3long) for s in ${LONG_SEEDS:-1 2 3}; do
                   sweep --name rgm_spread3_long --seeds $s --configs maddpg --env-configs mpe_spread with $LONG
                   sweep --name rgm_spread3_long_fo --seeds $s --configs maddpg --env-configs mpe_spread with $LONG env_args.observe_all=True
                   sweep --name rgm_spread3_long_m16 --seeds $s --configs rgmcomm_maddpg --env-configs mpe_spread with $LONG comm_labels=16
                 done ;;
    # Fig. 4 on predator-prey N = 3: 2, 8 and 16 labels (4 labels and the baselines are stage tag3;
    # run with MPE_T_MAX=80000 like tag3)
    tag3labels) for s in ${TAG_SEEDS:-1 2 3}; do for m in 2 8 16; do
                  sweep --name rgm_tag3_m$m --seeds $s --configs rgmcomm_maddpg --env-configs mpe_tag with $MPE env_args.n_predators=3 comm_labels=$m
                done; done ;;
    # CommNet and TarMAC on cooperative navigation N = 3 (the other methods are stage spread3)
    spread3comm) for s in ${SPREAD3_SEEDS:-1 2 3}; do
                   sweep --name rgm_spread3_comm --seeds $s --configs commnet_maddpg tarmac_maddpg --env-configs mpe_spread with $MPE
                 done ;;
    # Fig. 6: 6 and 8 labels on cooperative navigation N = 3 (4 and 16 are stage spread3)
    spread3labels) for s in ${SPREAD3_SEEDS:-1 2 3}; do for m in 6 8; do
                     sweep --name rgm_spread3_m$m --seeds $s --configs rgmcomm_maddpg --env-configs mpe_spread with $MPE comm_labels=$m
                   done; done ;;
    *) echo "unknown stage '$stage' ($ALL)" >&2; exit 2 ;;
  esac
done
