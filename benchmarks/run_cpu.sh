#!/usr/bin/env bash
# The CPU figures in BENCHMARKS.md, in one go (about 10 minutes on a 2-core machine, otherwise idle).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
$PY benchmarks/descriptors.py --sizes 64 128 256 --repeat 3
$PY benchmarks/throughput.py --preset cpu --batch-size 16 --train-steps 10 --sampler dpmpp --steps 20 --guidance 1.5 --num-samples 48 --sample-batch 48
$PY benchmarks/throughput.py --preset cpu --batch-size 16 --train-steps 0 --sampler ddim --steps 50 --guidance 1.5 --num-samples 48 --sample-batch 48
$PY benchmarks/throughput.py --preset cpu --batch-size 16 --train-steps 0 --sampler ancestral --steps 250 --guidance 1.5 --num-samples 48 --sample-batch 48
$PY benchmarks/throughput.py --preset paper --forward-only --batch-size 1 --train-steps 0
