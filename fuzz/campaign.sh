#!/usr/bin/env bash
# A fuzz campaign: runs one cargo-fuzz target for MINUTES with the nightly
# toolchain, keeps what it discovers in fuzz/target/campaign/TARGET/corpus
# (minimized; the next campaign starts from it, beside the checked-in seeds),
# and turns each crash, timeout or out-of-memory into a file under
# fuzz/corpus/TARGET/ that tests/fuzz_replay.rs replays on stable.
#
#   fuzz/campaign.sh TARGET MINUTES [JOBS]
#   TIMEOUT=S sets the seconds one input may take (default 10; raise it when
#   the campaign runs at low priority beside other work, since libFuzzer
#   counts wall-clock time)
#   targets: compile_schema matcher_walk vocab_load pattern gbnf lark
#
# Needs: rustup's nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
set -euo pipefail
cd "$(dirname "$0")"
target=${1:?usage: campaign.sh TARGET MINUTES [JOBS]}
minutes=${2:?usage: campaign.sh TARGET MINUTES [JOBS]}
jobs=${3:-1}
corpus=corpus/$target
work=target/campaign/$target
mkdir -p "$corpus" "$work/corpus" artifacts/$target
log=$work/log.txt
echo "campaign: $target for $minutes min, $jobs job(s); log in fuzz/$log"
# Only what this campaign finds counts (artifacts of earlier runs stay put).
started=$work/started
touch "$started"
# New entries go to $work/corpus; the checked-in corpus holds seeds and
# failing inputs only.
set +e
cargo +nightly fuzz run "$target" "$work/corpus" "$corpus" -j"$jobs" -- \
  -max_total_time=$((minutes * 60)) -timeout="${TIMEOUT:-10}" -rss_limit_mb=2048 \
  -print_final_stats=1 -artifact_prefix="artifacts/$target/" >"$log" 2>&1
status=$?
set -e
grep -E "stat::number_of_executed_units|stat::peak_rss_mb|cov:" "$log" | tail -4 || true
# Crashes, timeouts and OOMs become replayable corpus files.
found=0
for a in artifacts/"$target"/crash-* artifacts/"$target"/timeout-* artifacts/"$target"/oom-*; do
  [ -e "$a" ] || continue
  [ "$a" -nt "$started" ] || continue
  found=$((found + 1))
  cp "$a" "$corpus/$(basename "$a")"
  echo "kept $(basename "$a") in fuzz/$corpus: replay with cargo test --release --test fuzz_replay"
done
# Keep a minimized set of what the campaigns discovered.
before=$(ls "$work/corpus" | wc -l)
cargo +nightly fuzz cmin "$target" "$work/corpus" >>"$log" 2>&1 || true
echo "corpus: $before entries, $(ls "$work/corpus" | wc -l) after minimizing, in fuzz/$work/corpus"
if [ "$status" -ne 0 ] || [ "$found" -ne 0 ]; then
  echo "campaign found $found failing input(s) (exit $status); see fuzz/$log"
  exit 1
fi
echo "campaign: no crash, timeout or out-of-memory"
