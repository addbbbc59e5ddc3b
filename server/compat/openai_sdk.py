"""The OpenAI Python SDK against oai-sim: every route it uses, the stream as it parses it, and the
errors as its exception types. Also a TTFT as a naive SDK user measures it: from the call to the
first chunk the SDK yields (the role chunk), and how long after it the first content came, each
request tagged with an X-Request-Id header so compare.py can join it with the simulator's truth
log.

Usage: openai_sdk.py API_BASE MODEL OUT_JSON
"""

import json
import sys
import time

import httpx
import openai

API_BASE, MODEL, OUT = sys.argv[1], sys.argv[2], sys.argv[3]
client = openai.OpenAI(base_url=API_BASE, api_key="unused", max_retries=0, timeout=60)
passed, failed = 0, []


def check(name, ok, detail=""):
    global passed
    if ok:
        passed += 1
    else:
        failed.append(f"{name}: {detail}")


def expect_error(name, kind, status, call):
    try:
        call()
    except kind as e:
        check(f"{name}: {kind.__name__} {status}", e.status_code == status, e.status_code)
        return e
    except Exception as e:  # noqa: BLE001 - any other type is the failure being reported
        check(f"{name}: {kind.__name__}", False, f"{type(e).__name__}: {e}")
        return None
    check(f"{name}: {kind.__name__}", False, "no error")
    return None


FORCED = {"ignore_eos": True}
prompt = [{"role": "user", "content": "Say something about the sea, in a few words."}]

models = [m.id for m in client.models.list()]
check("models.list names the model", models == [MODEL], models)

chat = client.chat.completions.create(model=MODEL, messages=prompt, max_tokens=12, extra_body=FORCED)
check("chat: text", bool(chat.choices[0].message.content), chat)
check("chat: role", chat.choices[0].message.role == "assistant", chat.choices[0].message)
check("chat: usage", chat.usage.completion_tokens == 12 and chat.usage.prompt_tokens > 0, chat.usage)
check("chat: finish reason", chat.choices[0].finish_reason == "length", chat.choices[0])

chunks = list(
    client.chat.completions.create(
        model=MODEL, messages=prompt, max_tokens=12, stream=True,
        stream_options={"include_usage": True}, extra_body=FORCED,
    )
)
first = chunks[0].choices[0].delta
check("stream: the role chunk first", first.role == "assistant" and first.content == "", first)
content = [c for c in chunks if c.choices and c.choices[0].delta.content]
check("stream: one chunk per token", len(content) == 12, len(content))
check("stream: the last token carries the finish reason",
      content[-1].choices[0].finish_reason == "length", content[-1])
check("stream: usage chunk last, without choices",
      chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 12, chunks[-1])
check("stream: one id", len({c.id for c in chunks}) == 1, {c.id for c in chunks})
plain = list(client.chat.completions.create(model=MODEL, messages=prompt, max_tokens=4, stream=True))
check("stream: no usage unless asked", all(c.usage is None for c in plain), plain[-1])

text = client.completions.create(model=MODEL, prompt="Once upon a time", max_tokens=6, extra_body=FORCED)
check("completions: text and usage", bool(text.choices[0].text) and text.usage.completion_tokens == 6, text)
streamed = list(
    client.completions.create(
        model=MODEL, prompt="Once upon a time", max_tokens=6, stream=True,
        stream_options={"include_usage": True}, extra_body=FORCED,
    )
)
pieces = [c for c in streamed if c.choices and c.choices[0].text]
check("completions stream: one chunk per token, no role chunk", len(pieces) == 6, len(pieces))
check("completions stream: usage", streamed[-1].usage.completion_tokens == 6, streamed[-1])

emb = client.embeddings.create(model=MODEL, input=["a first text", "a second one"])
check("embeddings: one vector per input", len(emb.data) == 2 and len(emb.data[0].embedding) > 0, emb)
check("embeddings: usage", emb.usage.prompt_tokens > 0, emb.usage)

e = expect_error("unknown model", openai.NotFoundError, 404,
                 lambda: client.chat.completions.create(model="no-such-model", messages=prompt))
check("unknown model: vLLM's body", e is not None and e.body.get("param") == "model"
      and "does not exist" in e.body.get("message", ""), e and e.body)
e = expect_error("max_tokens over the context", openai.BadRequestError, 400,
                 lambda: client.chat.completions.create(model=MODEL, messages=prompt, max_tokens=10**7))
check("max_tokens over the context: param", e is not None and e.body.get("param") == "max_tokens", e and e.body)
long_prompt = [{"role": "user", "content": "word " * 140_000}]
e = expect_error("prompt over the context", openai.BadRequestError, 400,
                 lambda: client.chat.completions.create(model=MODEL, messages=long_prompt, max_tokens=4))
check("prompt over the context: vLLM's message", e is not None
      and "maximum context length" in e.body.get("message", ""), e and e.body)
e = expect_error("missing field", openai.BadRequestError, 400,
                 lambda: client.post("/chat/completions", cast_to=httpx.Response, body={"model": MODEL}))
check("missing field: param", e is not None and e.body.get("param") == "body.messages", e and e.body)
e = expect_error("bad JSON", openai.BadRequestError, 400,
                 lambda: client.post("/chat/completions", cast_to=httpx.Response, content=b"{\"model\": ",
                                     options={"headers": {"Content-Type": "application/json"}}))
check("bad JSON: a validation error", e is not None and e.body.get("type") == "Bad Request", e and e.body)

# TTFT as an SDK user measures it, one request at a time: call → first chunk (the role chunk).
ttft = []
for i in range(12):
    rid = f"openai-sdk-{i}"
    start = time.perf_counter()
    stream = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "word " * 193}], max_tokens=32,
        stream=True, extra_body=FORCED, extra_headers={"X-Request-Id": rid},
    )
    first_at = content_at = None
    for chunk in stream:
        now = time.perf_counter()
        if first_at is None and chunk.choices:
            first_at = now
        if content_at is None and chunk.choices and chunk.choices[0].delta.content:
            content_at = now
    ttft.append({"request_id": rid, "ttft_ms": (first_at - start) * 1e3,
                 "role_to_content_ms": (content_at - first_at) * 1e3})
json.dump({"passed": passed, "failed": failed, "ttft": ttft}, open(OUT, "w"))
for f in failed:
    print("FAIL openai-sdk", f)
print(f"openai-sdk {openai.__version__}: {passed} checks passed, {len(failed)} failed")
sys.exit(1 if failed else 0)
