"""Writes a Hugging Face tokenizer directory that counts tokens as oai-sim does, for clients that
need a tokenizer (AIPerf) without reaching the Hugging Face Hub.

oai-sim's tokenizer (crates/tokenomics-sim/src/wire.rs, `tokenize`): a token is a run of letters
and digits, or any other single character that is not a space. The same split is a `tokenizers`
pre-tokenizer (`[^\\W_]+|\\S`, the matches kept); the vocabulary is every piece of the texts given
(AIPerf samples its prompts from its bundled corpus, so that corpus is passed in), plus `[UNK]`,
so a prompt the client builds has as many tokens for the client as for the simulator.

AIPerf with HF_HUB_OFFLINE=1 loads a tokenizer only from the Hugging Face cache, by repo id
(`snapshot_download(local_files_only=True)`), not from a directory; so the files are also laid
out as a snapshot of the made-up repo `tokenomics/oai-sim-words` in the cache given, with
`refs/main` pointing at it. Nothing is downloaded.

Usage: make_tokenizer.py HF_HUB_CACHE CORPUS_FILE...
"""

import json
import pathlib
import re
import sys

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

PIECE = r"[^\W_]+|\S"
REPO = "tokenomics/oai-sim-words"
COMMIT = "0" * 40


def main() -> None:
    cache = pathlib.Path(sys.argv[1])
    repo = cache / f"models--{REPO.replace('/', '--')}"
    out = repo / "snapshots" / COMMIT
    vocab = {"[UNK]": 0, "<|eos|>": 1}
    for path in sys.argv[2:]:
        text = pathlib.Path(path).read_text(encoding="utf-8", errors="replace")
        for piece in re.findall(PIECE, text):
            vocab.setdefault(piece, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(PIECE), behavior="removed", invert=True)
    # Decoding joins pieces with a space: the simulator counts the same pieces either way.
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    out.mkdir(parents=True, exist_ok=True)
    tok.save(str(out / "tokenizer.json"))
    (out / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "PreTrainedTokenizerFast",
                "unk_token": "[UNK]",
                "eos_token": "<|eos|>",
                "model_max_length": 131072,
            }
        )
    )
    (out / "special_tokens_map.json").write_text(
        json.dumps({"unk_token": "[UNK]", "eos_token": "<|eos|>"})
    )
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(COMMIT)
    print(f"make_tokenizer.py: {REPO} ({len(vocab)} pieces) in {out}")


if __name__ == "__main__":
    main()
