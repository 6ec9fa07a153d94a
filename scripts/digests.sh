#!/usr/bin/env bash
# The weights digests a change that is not meant to change the maths must keep (a refactor, a
# schedule, a faster copy): each case runs `ftrain run` on the cpu backend with a fixed seed and
# compares the run's weightsDigest with the one recorded here. Cases that must agree (a run with
# failures and the same run without; the all-reduce in buckets and in one piece) carry the same
# recorded digest; CheckFree changes the maths by design, so its digest is its own. Not part of
# CI: about 17 minutes on 2 cores. Prints one line per case and
# exits 1 on any difference.
#
#   scripts/digests.sh            every case
#   scripts/digests.sh NAME...    only those cases
#
# A change that is meant to change the maths updates the recorded digests in the same commit and
# says why.
set -euo pipefail
cd "$(dirname "$0")/.."

WIDE="--d-model 512 --layers-per-stage 2 --micro-batches 1 --micro-batch-size 2 --seq-len 32"
# name | digest prefix (sha256 hex) | arguments of `ftrain run`
CASES=(
  "one-replica|5686496b|--nodes 4 --steps 10 --seed 1 --backend cpu"
  "one-replica-worker-kills|5686496b|--nodes 4 --steps 10 --seed 1 --backend cpu --inject 3:1:worker-kill,4:1:worker-kill,7:3:worker-kill"
  "one-replica-preempt|5686496b|--nodes 4 --steps 10 --seed 1 --backend cpu --spares 1 --inject 4:2:preempt"
  "one-replica-node-kill|5686496b|--nodes 4 --steps 10 --seed 1 --backend cpu --spares 1 --recovery snapshot --inject 5:1:node-kill"
  "one-replica-disk-restart|5686496b|--nodes 4 --steps 10 --seed 1 --backend cpu --spares 1 --ec off --recovery checkpoint --checkpoint-every 3 --checkpoint-dir CKDIR --inject 5:1:node-kill"
  "one-replica-checkfree|9de797f4|--nodes 4 --steps 10 --seed 1 --backend cpu --spares 1 --recovery checkfree --inject 5:1:node-kill"
  "two-replicas|237e0a0c|--replicas 2 --nodes 2 --spares 1 --steps 10 --backend cpu --seed 1 --snapshot-every 1"
  "two-replicas-node-kill|237e0a0c|--replicas 2 --nodes 2 --spares 1 --steps 10 --backend cpu --seed 1 --snapshot-every 1 --inject 4:1@1:node-kill"
  "three-replicas|6d57a332|--replicas 3 --nodes 2 --spares 1 --steps 8 --backend cpu --seed 2 --snapshot-every 1"
  "three-replicas-node-kill|6d57a332|--replicas 3 --nodes 2 --spares 1 --steps 8 --backend cpu --seed 2 --snapshot-every 1 --inject 3:1@1:node-kill"
  "three-replicas-buckets|bf9fa4cd|--replicas 3 --nodes 1 --steps 3 --backend cpu --seed 1 $WIDE --overlap-reduce on"
  "three-replicas-one-bucket|bf9fa4cd|--replicas 3 --nodes 1 --steps 3 --backend cpu --seed 1 $WIDE --overlap-reduce off"
)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=0
for c in "${CASES[@]}"; do
  IFS='|' read -r name want args <<<"$c"
  if [[ $# -gt 0 && ! " $* " =~ " $name " ]]; then continue; fi
  start=$(date +%s)
  args=${args//CKDIR/$work/$name-checkpoints}
  # shellcheck disable=SC2086 # the arguments are words
  if ! node bin/ftrain.js run $args --report "$work/$name.json" >"$work/$name.log" 2>&1; then
    echo "$name: the run failed; its output:" >&2
    tail -20 "$work/$name.log" >&2
    failed=1
    continue
  fi
  got=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).weightsDigest ?? "none")' "$work/$name.json")
  secs=$(($(date +%s) - start))
  if [[ "$got" == "$want"* ]]; then
    echo "$name: $got (as recorded, ${secs} s)"
  else
    echo "$name: $got, recorded ${want}: DIFFERENT (${secs} s)"
    failed=1
  fi
done
exit $failed
