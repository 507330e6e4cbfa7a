"""A tiny OpenAI-compatible chat-completions server for the provider tests.

The URL prefix picks the behaviour: `/<scenario>/v1/chat/completions`. Every request is recorded
so tests can check what the client sent (headers, response_format, the re-ask message).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

SLOW_SECONDS = 1.5


def _step(body: dict[str, Any]) -> str:
    system = body["messages"][0]["content"]
    if system.startswith("You screen"):
        return "guard"
    if system.startswith("You analyse"):
        return "analysis"
    return "reading"


def valid_answer(body: dict[str, Any], guard_category: str = "ok") -> dict[str, Any]:
    step = _step(body)
    if step == "guard":
        return {"allowed": guard_category == "ok", "category": guard_category}
    if step == "analysis":
        return {"topic": "love", "intent": "yes_no", "time_frame": "this_month",
                "keywords": ["แฟน", "คืนดี"]}
    facts = json.loads(body["messages"][1]["content"])
    return {
        "cards": [
            {"position": c["position"],
             "interpretation": f"{c['card']} in {c['position_name']}: {c['meaning_for_topic']}"}
            for c in facts["cards"]
        ],
        "summary": "The cards speak of a gentle reunion built on honest conversation.",
        "advice": "Reach out kindly and listen more than you speak.",
    }


def completion(content: str, finish_reason: str = "stop") -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": "stub-model",
        "choices": [{"index": 0, "finish_reason": finish_reason,
                     "message": {"role": "assistant", "content": content}}],
    }


class LlmStub:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.url = ""  # set by the test once the server is listening
        self.app = Starlette(routes=[
            Route("/{scenario}/v1/chat/completions", self.handle, methods=["POST"]),
        ])

    def bodies(self, scenario: str) -> list[dict[str, Any]]:
        return [r["body"] for r in self.requests if r["scenario"] == scenario]

    async def handle(self, request: Request) -> Response:
        scenario = request.path_params["scenario"]
        body = json.loads(await request.body())
        self.requests.append({"scenario": scenario, "body": body,
                              "authorization": request.headers.get("authorization")})
        reasked = len(body["messages"]) > 2
        if scenario == "valid":
            return JSONResponse(completion(json.dumps(valid_answer(body), ensure_ascii=False)))
        if scenario == "refuse":
            return JSONResponse(completion(json.dumps(valid_answer(body, "self_harm"))))
        if scenario == "invalid-then-valid":
            if not reasked:
                return JSONResponse(completion("Sure! Here is your reading: the cards look good."))
            return JSONResponse(completion(json.dumps(valid_answer(body), ensure_ascii=False)))
        if scenario == "wrong-positions-then-valid" and _step(body) == "reading" and not reasked:
            answer = valid_answer(body)
            answer["cards"] = list(reversed(answer["cards"]))
            return JSONResponse(completion(json.dumps(answer, ensure_ascii=False)))
        if scenario == "wrong-positions-then-valid":
            return JSONResponse(completion(json.dumps(valid_answer(body), ensure_ascii=False)))
        if scenario == "always-invalid":
            return JSONResponse(completion(json.dumps({"allowed": "perhaps"})))
        if scenario == "truncated":
            return JSONResponse(completion('{"allowed": tr', finish_reason="length"))
        if scenario.startswith("status-"):
            status = int(scenario.removeprefix("status-"))
            headers = {"Retry-After": "7"} if status == 429 else {}
            return JSONResponse({"error": {"message": f"stub error {status}", "type": "test"}},
                                status_code=status, headers=headers)
        if scenario == "slow":
            await asyncio.sleep(SLOW_SECONDS)
            return JSONResponse(completion(json.dumps(valid_answer(body))))
        return JSONResponse({"error": {"message": "unknown scenario"}}, status_code=404)
