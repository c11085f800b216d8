#!/usr/bin/env bash
# The benchmark set for an accelerator (first run on one NVIDIA H200, 2026-12-04; figures in README and
# benchmarks/results/h200_2026-12-04/), as one script with a time limit per part, so that a part that runs long
# costs its own rows only:
#
#     bash benchmarks/accelerator.sh OUTDIR                    # every part; JAX_PLATFORMS defaults to cuda
#     PARTS="alphazero pgx_example" bash benchmarks/accelerator.sh OUTDIR
#     SMOKE=1 JAX_PLATFORMS=cpu bash benchmarks/accelerator.sh /tmp/acc   # tiny sizes, to check the script
#
# Each part writes its JSON under OUTDIR/results (through JAXRL_BENCH_RESULTS) and its log beside it; the folder
# is packed into OUTDIR/results.tgz, or PACK, after every part. Parts, with their wall time on the H200
# (compiles included; imports about 5 s a process):
#   alphazero    AlphaZero self-play on connect four, gumbel search, 32 and 128 simulations, 64 and 1,024 games
#                in lockstep (alphazero_throughput.py); about 150 s.
#   pgx_example  pgx's own example at the same sizes (peer_pgx_alphazero.py), one process per row; needs
#                PGX_EXAMPLE, a folder with its train.py and network.py, and dm-haiku, pydantic on the path.
#                32 simulations: about 25 s a row; 128 simulations and 64 games: about 50 s; 1,024 games
#                and 128 simulations did not finish within 55 s.
#   continuous   SAC and TD3 on gymnax Pendulum-v1 (1 env, one gradient step of 256 per env step, 64-64), 1 and
#                8 vmapped seeds, and rejax 0.1.3 at 1 seed when PEER_PYTHONPATH holds it (with gymnax 0.0.9):
#                about 95 s.
#   scaling      scaling.py, PPO and DQN on CartPole-v1 and Breakout-MinAtar against num_envs and num_seeds,
#                one process per curve pair; about 8 s a point.
set -u
OUT_DIR=$(mkdir -p "${1:?usage: accelerator.sh OUTDIR}" && cd "$1" && pwd)
cd "$(dirname "$0")/.."
export JAX_PLATFORMS=${JAX_PLATFORMS:-cuda} PYTHONUNBUFFERED=1 JAXRL_BENCH_RESULTS=$OUT_DIR/results
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
PY=${PY:-python3}
mkdir -p "$JAXRL_BENCH_RESULTS"

part() {  # part NAME SECONDS CMD...: run CMD under a time limit, log it, pack the results so far
    local name=$1 limit=$2
    shift 2
    echo "=== $name (limit ${limit} s) $(date +%T)"
    timeout -k 5 "$limit" "$@" 2>&1 | tee -a "$OUT_DIR/results/log_$name.txt"
    echo "=== $name rc=${PIPESTATUS[0]} $(date +%T)"
    tar -C "$OUT_DIR" -czf "${PACK:-$OUT_DIR/results.tgz}" results
}

PARTS=${PARTS:-alphazero pgx_example continuous scaling}
want() { [[ " $PARTS " == *" $1 "* ]]; }
if [ -n "${SMOKE:-}" ]; then
    AZ="--sims 2 --games 4 --updates 1 --repeats 1"; PEER_ROWS="4:2"; PEER_AZ="--moves 8 --repeats 1"
    CONT="--seeds 1,2 --repeats 1"; SCALE="--num-envs 4 --num-seeds 1 2 --min-seconds 0.1"
    L_AZ=600; L_PEER=600; L_CONT=600; L_SCALE=600
else
    AZ="--sims 32 128 --games 64 1024 --updates 8 --repeats 2"; PEER_ROWS="64:32 64:128 1024:32 1024:128"
    PEER_AZ="--moves 64 --repeats 2"; CONT="--seeds 1,8 --repeats 2"
    SCALE="--num-envs 16 1024 16384 --num-seeds 1 16 64 --min-seconds 0.5 --max-gb 16"
    L_AZ=200; L_PEER=90; L_CONT=150; L_SCALE=70
fi

part versions 60 "$PY" -c "
import sys, importlib.metadata as m, jax
print(sys.version.split()[0], *(f'{p} {m.version(p)}' for p in ('jax', 'jaxlib', 'flax', 'optax', 'chex', 'gymnax', 'mctx', 'pgx')))
print(jax.devices())"
command -v nvidia-smi >/dev/null && nvidia-smi -L | tee "$OUT_DIR/results/log_gpu.txt"

want alphazero && part alphazero "$L_AZ" "$PY" benchmarks/alphazero_throughput.py --search gumbel $AZ
if want pgx_example && [ -n "${PGX_EXAMPLE:-}" ]; then
    for row in $PEER_ROWS; do
        g=${row%:*} s=${row#*:}
        part "pgx_example_games${g}_sims$s" "$L_PEER" "$PY" benchmarks/peer_pgx_alphazero.py $PEER_AZ --games "$g" \
            --sims "$s" --example-dir "$PGX_EXAMPLE" --out "$JAXRL_BENCH_RESULTS/peer_pgx_alphazero_games${g}_sims$s.json"
    done
fi

PEER=()
[ -n "${PEER_PYTHONPATH:-}" ] && PEER=(--peer-python "$PY" --rounds 1)
want continuous && part continuous "$L_CONT" "$PY" benchmarks/continuous_throughput.py --only pendulum \
    --algos sac,td3 --hidden 64 $CONT "${PEER[@]}"

if want scaling; then
    for algo in ppo dqn; do
        for env in CartPole-v1 Breakout-MinAtar; do
            part "scaling_${algo}_$env" "$L_SCALE" "$PY" benchmarks/scaling.py --algos "$algo" --envs "gymnax:$env" \
                $SCALE --name "scaling_${algo}_$env"
        done
    done
fi
echo "done $(date +%T)"
