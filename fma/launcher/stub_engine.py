"""A stub of vLLM's OpenAI API server: the endpoints FMA drives, with configurable latencies.

Why it exists: sleep and wake are CUDA-only in vLLM, and a real engine takes tens of
seconds to start; the stub lets the launcher, the controller and their tests exercise the
whole actuation cycle on any machine, in seconds.

Endpoints (vLLM's shapes): ``GET /health``, ``GET /version``, ``GET /v1/models``,
``POST /v1/completions``, ``POST /sleep?level=N``, ``POST /wake_up``, ``GET /is_sleeping``
(``{"is_sleeping": bool}``). While asleep, or falling asleep, or waking, ``is_sleeping`` is
true and inference gets 503.

Its log (stdout) has vLLM's lines in vLLM's format (:mod:`fma.launcher.vllm_lines`), so that
tools that read a vLLM log read the stub's alike: ``non-default args: {...}`` at start, and
``It took X seconds to fall asleep.`` / ``It took X seconds to wake up ...`` at the end of each
sleep and wake.

Options: ``--model``, ``--port``, ``--host``, ``--served-model-name``, and the stub's own
latencies ``--stub-start-s``, ``--stub-sleep-s``, ``--stub-wake-s`` (else the environment
variables ``FMA_STUB_START_S``, ``FMA_STUB_SLEEP_S``, ``FMA_STUB_WAKE_S``, else the
simulator's defaults in :mod:`fma.api.latency`). Any other vLLM option is ignored.

Run standalone: ``python -m fma.launcher.stub_engine --model m --port 8000``.
"""

import argparse
import asyncio
import enum
import itertools
import math
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Final

from fastapi import FastAPI, Query
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from fma.api.constants import STUB_ENGINE_PORT
from fma.api.latency import STUB_SLEEP_S_DEFAULT, STUB_START_S_DEFAULT, STUB_WAKE_S_DEFAULT
from fma.asgi.limits import BodySizeLimit
from fma.launcher.vllm_lines import sleep_lines, start_line, wake_line

ENV_STUB_START_S: Final = "FMA_STUB_START_S"
ENV_STUB_SLEEP_S: Final = "FMA_STUB_SLEEP_S"
ENV_STUB_WAKE_S: Final = "FMA_STUB_WAKE_S"
LATENCY_S_MAX: Final = 3600.0
COMPLETION_TOKENS_MAX: Final = 4096
PROMPT_CHARS_MAX: Final = 1_000_000
REQUEST_BODY_BYTES_MAX: Final = 4 * 1024 * 1024
DEFAULT_MODEL: Final = "stub-model"
STUB_VERSION: Final = "0.0.0+fma.stub"
"""What ``GET /version`` answers (vLLM answers its own version)."""
Log = Callable[[str], None]


def _print(line: str) -> None:
    print(line, flush=True)


@dataclass(frozen=True, slots=True)
class StubLatency:
    """Simulated delays, in seconds."""

    start_s: float = STUB_START_S_DEFAULT
    sleep_s: float = STUB_SLEEP_S_DEFAULT
    wake_s: float = STUB_WAKE_S_DEFAULT


@dataclass(frozen=True, slots=True)
class StubArgs:
    """The options the stub understands."""

    model: str
    served_model_names: tuple[str, ...]
    host: str
    port: int
    latency: StubLatency


def _latency_s(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or not 0 <= value <= LATENCY_S_MAX:
        raise argparse.ArgumentTypeError(f"must be within 0..{LATENCY_S_MAX:.0f} seconds")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("must be a TCP port number")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fma.launcher.stub_engine",
        description="A vLLM-compatible stub server (ignores vLLM options it does not know).",
        allow_abbrev=False,
    )
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--served-model-name", nargs="+", default=None)
    parser.add_argument("--host", default="0.0.0.0")  # noqa: S104 (vLLM's default, for pods)
    parser.add_argument("--port", type=_port, default=STUB_ENGINE_PORT)
    parser.add_argument("--stub-start-s", type=_latency_s, default=None)
    parser.add_argument("--stub-sleep-s", type=_latency_s, default=None)
    parser.add_argument("--stub-wake-s", type=_latency_s, default=None)
    return parser


def _from_env(environ: Mapping[str, str], name: str, default: float) -> float:
    text = environ.get(name)
    if text is None or not text.strip():
        return default
    try:
        return _latency_s(text)
    except (ValueError, argparse.ArgumentTypeError) as error:
        raise SystemExit(f"{name}={text!r}: {error}") from None


def parse_args(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> StubArgs:
    """Parse stub options (unknown vLLM options are ignored); exits 2 on a bad value."""
    env = os.environ if environ is None else environ
    known, _ = _parser().parse_known_args(list(argv))
    latency = StubLatency(
        start_s=known.stub_start_s
        if known.stub_start_s is not None
        else _from_env(env, ENV_STUB_START_S, STUB_START_S_DEFAULT),
        sleep_s=known.stub_sleep_s
        if known.stub_sleep_s is not None
        else _from_env(env, ENV_STUB_SLEEP_S, STUB_SLEEP_S_DEFAULT),
        wake_s=known.stub_wake_s
        if known.stub_wake_s is not None
        else _from_env(env, ENV_STUB_WAKE_S, STUB_WAKE_S_DEFAULT),
    )
    names = tuple(known.served_model_name or [known.model])
    return StubArgs(
        model=known.model,
        served_model_names=names,
        host=known.host,
        port=known.port,
        latency=latency,
    )


class Phase(enum.Enum):
    """Where the engine is in its sleep cycle; only AWAKE serves."""

    AWAKE = "awake"
    FALLING_ASLEEP = "falling_asleep"
    ASLEEP = "asleep"
    WAKING = "waking"


class CompletionRequest(BaseModel):
    """The part of OpenAI's completion request the stub reads; other fields are ignored."""

    model_config = ConfigDict(extra="allow")

    model: str | None = None
    prompt: (
        Annotated[str, Field(max_length=PROMPT_CHARS_MAX)]
        | list[Annotated[str, Field(max_length=PROMPT_CHARS_MAX)]]
    ) = ""
    max_tokens: Annotated[int, Field(ge=1, le=COMPLETION_TOKENS_MAX)] = 16


class StubEngine:
    """The stub's state: its sleep phase, serialised by one lock (vLLM sleeps one at a time).
    ``log`` gets vLLM's sleep and wake lines."""

    def __init__(self, args: StubArgs, log: Log = _print) -> None:
        self.args = args
        self._log = log
        self.phase = Phase.AWAKE
        self.sleep_level: int | None = None
        self._transition = asyncio.Lock()
        self._ids = itertools.count(1)

    async def sleep(self, level: int) -> None:
        async with self._transition:
            if self.phase is Phase.ASLEEP:
                return
            self.phase = Phase.FALLING_ASLEEP
            started = time.perf_counter()
            await asyncio.sleep(self.args.latency.sleep_s)
            self.phase, self.sleep_level = Phase.ASLEEP, level
            for line in sleep_lines(time.perf_counter() - started):
                self._log(line)

    async def wake(self) -> None:
        async with self._transition:
            if self.phase is Phase.AWAKE:
                return
            self.phase = Phase.WAKING
            started = time.perf_counter()
            await asyncio.sleep(self.args.latency.wake_s)
            self.phase, self.sleep_level = Phase.AWAKE, None
            self._log(wake_line(time.perf_counter() - started))

    def complete(self, request: CompletionRequest) -> dict[str, Any]:
        prompts = [request.prompt] if isinstance(request.prompt, str) else request.prompt
        choices = [
            {
                "index": index,
                "text": " ".join(f"tok{n}" for n in range(request.max_tokens)),
                "logprobs": None,
                "finish_reason": "length",
            }
            for index, _ in enumerate(prompts or [""])
        ]
        prompt_tokens = sum(len(p.split()) for p in prompts)
        completion_tokens = request.max_tokens * len(choices)
        return {
            "id": f"cmpl-stub-{next(self._ids)}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": request.model or self.args.served_model_names[0],
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }


def _openai_error(status: int, message: str, kind: str) -> JSONResponse:
    return JSONResponse(
        status_code=status, content={"error": {"message": message, "type": kind, "code": status}}
    )


def non_default_args(args: StubArgs) -> dict[str, object]:
    """The options as vLLM logs them at start (``port`` is what tools look for)."""
    found: dict[str, object] = {"model": args.model, "port": args.port}
    if args.served_model_names != (args.model,):
        found["served_model_name"] = list(args.served_model_names)
    found["enable_sleep_mode"] = True
    return found


def create_app(args: StubArgs, log: Log = _print) -> FastAPI:
    """The stub's ASGI app (no start delay: ``main`` waits before it serves); ``log`` gets
    vLLM's sleep and wake lines."""
    engine = StubEngine(args, log)
    app = FastAPI(title="FMA stub engine")
    app.add_middleware(BodySizeLimit, limit_bytes=REQUEST_BODY_BYTES_MAX)

    @app.get("/health")
    async def health() -> Response:
        return Response(status_code=200)

    @app.get("/version")
    async def version() -> dict[str, str]:
        return {"version": STUB_VERSION}

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        data = [
            {"id": name, "object": "model", "owned_by": "fma-stub", "root": args.model}
            for name in args.served_model_names
        ]
        return {"object": "list", "data": data}

    @app.post("/v1/completions")
    async def completions(request: CompletionRequest) -> Response:
        if request.model is not None and request.model not in args.served_model_names:
            return _openai_error(404, f"The model `{request.model}` does not exist.", "NotFound")
        if engine.phase is not Phase.AWAKE:
            return _openai_error(503, f"the engine is {engine.phase.value}", "ServiceUnavailable")
        return JSONResponse(engine.complete(request))

    @app.post("/sleep")
    async def sleep(level: Annotated[int, Query(ge=1, le=2)] = 1) -> Response:
        await engine.sleep(level)
        return Response(status_code=200)

    @app.post("/wake_up")
    async def wake_up(tags: Annotated[list[str] | None, Query(max_length=16)] = None) -> Response:
        await engine.wake()
        return Response(status_code=200)

    @app.get("/is_sleeping")
    async def is_sleeping() -> dict[str, bool]:
        return {"is_sleeping": engine.phase is not Phase.AWAKE}

    return app


def main(argv: Sequence[str] | None = None) -> int:
    """Run the stub until SIGTERM/SIGINT; returns the exit code."""
    import uvicorn

    args = parse_args(sys.argv[1:] if argv is None else argv)
    print(
        f"stub engine: model {args.model!r} as {', '.join(args.served_model_names)}; "
        f"start {args.latency.start_s} s, sleep {args.latency.sleep_s} s, "
        f"wake {args.latency.wake_s} s",
        flush=True,
    )
    _print(start_line(non_default_args(args)))
    # Like a real engine, nothing listens until start-up is over.
    time.sleep(args.latency.start_s)
    uvicorn.run(create_app(args), host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
