#!/usr/bin/env bash
# Regenerates every file in assets/ from the current binaries, against the built-in simulator in
# real time (a time scale would scale the figures too), so the README's and the book's pictures
# and the result files beside them always come from the code as it is. Takes a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release -q -p oai-bench -p embed-bench -p plot-throughput
bin=target/release

"$bin/oai-bench" --simulate h100-llama-3.1-8b --batch_sizes 1,2,4,8,16,32,64,128 \
    --max_tokens 256 --stream --progress never \
    --description "Simulated H100, Llama 3.1 8B (oai-sim preset h100-llama-3.1-8b)" \
    --results_file assets/example_chat_h100.json
"$bin/oai-bench" --simulate a100-llama-3.1-8b --batch_sizes 1,2,4,8,16,32,64,128 \
    --max_tokens 256 --stream --progress never \
    --description "Simulated A100, Llama 3.1 8B (oai-sim preset a100-llama-3.1-8b)" \
    --results_file assets/example_chat_a100.json
# The original README's embedding command (one length, batch sizes 1 to 512).
"$bin/embed-bench" --simulate h100-llama-3.1-8b --sequence_lengths 200 \
    --batch_sizes 1,8,16,32,64,128,256,512 --num_runs 3 \
    --description "Simulated H100 (oai-sim preset h100-llama-3.1-8b), 200-word texts" \
    --results_file assets/example_embeddings.json

"$bin/plot-throughput" assets/example_chat_h100.json assets/example_chat_h100.png
"$bin/plot-throughput" assets/example_chat_h100.json assets/example_chat_a100.json \
    -o assets/example_compare.png --labels "H100,A100" \
    --title "Llama 3.1 8B: simulated H100 against A100"
"$bin/plot-throughput" assets/example_embeddings.json assets/example_embeddings.png
# A sweep and an SLO search of each of two presets (1,000 prompt tokens, 200 output tokens), the
# frontier of the two sweeps, and the H100 search's probes with its capacity marked.
for gpu in h100 a100; do
    "$bin/oai-bench" --simulate "$gpu-llama-3.1-8b" --sweep --duration 20 --stream --ignore_eos \
        --input_tokens 1000 --max_tokens 200 --progress never \
        --description "Sweep: simulated $gpu, Llama 3.1 8B, 1000 in / 200 out" \
        --results_file "assets/sweep_$gpu.json"
    "$bin/oai-bench" --simulate "$gpu-llama-3.1-8b" --slo ttft_p99:500,tpot_p99:40 \
        --sweep_from_sim "$gpu-llama-3.1-8b" --stream --ignore_eos \
        --input_tokens 1000 --max_tokens 200 --progress never \
        --description "SLO search: simulated $gpu" \
        --results_file "assets/slo_$gpu.json"
done
"$bin/plot-throughput" assets/sweep_h100.json assets/sweep_a100.json -o assets/frontier.png \
    --frontier --labels "H100,A100" --title "Llama 3.1 8B, 1000 in / 200 out: simulated H100 against A100"
"$bin/plot-throughput" assets/slo_h100.json assets/slo_h100.png
# The one-file HTML report of the H100 sweep, and a screenshot of it in headless Chromium
# (Debian's `chromium`; skipped with a line where it is not installed).
"$bin/plot-throughput" assets/sweep_h100.json --html assets/report_sweep_h100.html
if command -v chromium >/dev/null; then
    profile=$(mktemp -d)
    chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$profile" --hide-scrollbars --window-size=1280,2880 \
        --screenshot=assets/report.png "file://$PWD/assets/report_sweep_h100.html" 2>/dev/null
    rm -rf "$profile"
else
    echo "chromium not found: assets/report.png not redrawn (apt-get install chromium)"
fi
# A ramp through the H100's saturation rate (~19 requests/s for these lengths), over time.
"$bin/oai-bench" --simulate h100-llama-3.1-8b --ramp linear:2,60,40 --stream --ignore_eos \
    --input_tokens 1000 --max_tokens 200 --progress never \
    --description "Ramp 2 → 60 requests/s over 40 s: simulated H100, Llama 3.1 8B, 1000 in / 200 out" \
    --results_file assets/timeline_ramp.json
"$bin/plot-throughput" --timeline assets/timeline_ramp.json -o assets/timeline_ramp.png
echo "assets regenerated"
