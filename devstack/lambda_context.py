"""What the Lambda Python runtime gives a handler besides the event: the context object, and the
function definitions (handler, timeout, memory) read from serverless.yml."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# Serverless Framework defaults when neither the function nor `provider` sets a value.
DEFAULT_TIMEOUT_SECONDS = 6
DEFAULT_MEMORY_MB = 1024
LOCAL_REGION = "ap-southeast-1"
LOCAL_ACCOUNT = "000000000000"


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    handler: str  # "functions/session/handler.handler", as serverless.yml writes it
    timeout_seconds: float
    memory_mb: int

    @property
    def module(self) -> str:
        path, _, _ = self.handler.rpartition(".")
        return path.replace("/", ".")

    @property
    def attribute(self) -> str:
        return self.handler.rpartition(".")[2]


class _CloudFormationLoader(yaml.SafeLoader):
    """serverless.yml may hold CloudFormation tags (!Ref, !GetAtt ...); they resolve only in AWS."""


def _ignore_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> None:
    return None


_CloudFormationLoader.add_multi_constructor("!", _ignore_tag)


def load_functions(serverless_yml: Path) -> dict[str, FunctionSpec]:
    """Every function of serverless.yml with its effective timeout and memory size."""
    config = yaml.load(Path(serverless_yml).read_text(encoding="utf-8"), _CloudFormationLoader)  # noqa: S506 - a SafeLoader subclass
    provider = config.get("provider") or {}
    timeout = provider.get("timeout", DEFAULT_TIMEOUT_SECONDS)
    memory = provider.get("memorySize", DEFAULT_MEMORY_MB)
    specs: dict[str, FunctionSpec] = {}
    for name, fn in (config.get("functions") or {}).items():
        specs[name] = FunctionSpec(
            name=name,
            handler=str(fn["handler"]),
            timeout_seconds=float(fn.get("timeout", timeout)),
            memory_mb=int(fn.get("memorySize", memory)),
        )
    return specs


@dataclass
class LambdaContext:
    """The attributes and method of the Python runtime's context object that handlers use."""

    function_name: str
    memory_limit_in_mb: int
    timeout_seconds: float
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    identity: Any = None
    client_context: Any = None
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        if not self._deadline:
            self._deadline = time.monotonic() + self.timeout_seconds

    @classmethod
    def for_function(cls, spec: FunctionSpec, request_id: str) -> LambdaContext:
        return cls(spec.name, spec.memory_mb, spec.timeout_seconds, aws_request_id=request_id)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{LOCAL_REGION}:{LOCAL_ACCOUNT}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return f"{time.strftime('%Y/%m/%d')}/[$LATEST]local"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))
