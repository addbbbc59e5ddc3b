#!/usr/bin/env bash
# Regenerates every file in assets/ from the current binaries, against the built-in simulator in
# real time (a time scale would scale the figures too), so the README's pictures and the result
# files beside them always come from the code as it is. Takes a few minutes.
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
echo "assets regenerated"
