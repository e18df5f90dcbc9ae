#!/bin/sh
# Train the three shipped models as done for the committed exports: two single-threaded jobs side
# by side on the 2 shared cores (coder | gpt2-coder then coder-draft). Single-threaded because
# 2-thread OpenMP jobs crawl when the cores are shared with other work.
# Logs: /tmp/models/<name>.log ; checkpoints: scripts/models/.cache/<name>.pt
cd "$(dirname "$0")"
mkdir -p /tmp/models
nice -n 10 /usr/bin/python3 train.py --model coder --steps 650 --batch 16 --warmup 50 --eval-every 100 --threads 1 > /tmp/models/coder.log 2>&1 &
( nice -n 10 /usr/bin/python3 train.py --model gpt2-coder --steps 800 --batch 16 --warmup 50 --eval-every 100 --threads 1 > /tmp/models/gpt2-coder.log 2>&1
  nice -n 10 /usr/bin/python3 train.py --model coder-draft --steps 600 --batch 16 --warmup 50 --eval-every 150 --threads 1 > /tmp/models/coder-draft.log 2>&1 ) &
wait
