#!/usr/bin/env bash
# A/B throughput of two git refs on this machine, interleaved (ref A, ref B, A, B ...) so that both
# see the same load: the PPO benchmark (num_envs 4, 1 and 8 seeds), the DQN reference row and switch
# rows, and `jaxrl train ppo --num-seeds 1`. Each ref runs from its own git worktree.
#
#   bash benchmarks/ab_refs.sh pre-core main [ROUNDS]     # outputs under benchmarks/results/ab-<A>-<B>/
set -euo pipefail
A=$1; B=$2; ROUNDS=${3:-2}
ROOT=$(git rev-parse --show-toplevel)
PY=${PY:-$ROOT/.venv/bin/python}
OUT=$ROOT/benchmarks/results/ab-$A-$B; mkdir -p "$OUT"
export JAX_PLATFORMS=cpu JAXRL_COMPILE_CACHE=off
for ref in "$A" "$B"; do
  dir=/tmp/jaxrl-ab-$ref
  [ -d "$dir" ] || git -C "$ROOT" worktree add -q --detach "$dir" "$ref"
done
for round in $(seq "$ROUNDS"); do
  for ref in "$A" "$B"; do
    dir=/tmp/jaxrl-ab-$ref; cd "$dir"
    PYTHONPATH=$dir "$PY" benchmarks/ppo_throughput.py --quick --repeats 3 --name "ab_ppo_$ref" \
      > "$OUT/ppo_${ref}_$round.txt" 2>&1
    PYTHONPATH=$dir "$PY" benchmarks/dqn_throughput.py --repeats 2 --switch-steps 50000 --pong-steps 0 \
      --out "$OUT/dqn_${ref}_$round.json" > "$OUT/dqn_${ref}_$round.txt" 2>&1
    rm -rf "/tmp/jaxrl-ab-run-$ref"
    PYTHONPATH=$dir "$PY" -m jaxrl train ppo --num-seeds 1 --total-steps 500000 --out "/tmp/jaxrl-ab-run-$ref" \
      --quiet > "$OUT/cli_${ref}_$round.txt" 2>&1
  done
done
grep -H "steps/s\|^ \+4 " "$OUT"/*.txt | grep -v "load average" || true
