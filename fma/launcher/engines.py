"""Engines: what an instance process runs, given its options.

``vllm`` is vLLM's OpenAI-compatible API server, parsed with vLLM's own argument parser, and
``stub`` is :mod:`fma.launcher.stub_engine`. An engine is loaded once in the launcher
(``preload``: for vLLM this is the import that makes warm starts fast, inherited by every
forked instance) and runs in the forked child (``serve``).

The vLLM entry points moved between releases; ``_vllm_entry`` finds them in the layout of
0.32 and, failing that, in the older ``vllm.entrypoints.openai`` layout.
"""

import argparse
import contextlib
import importlib
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from fma.launcher.errors import InvalidOptions

ENGINE_NAMES: Final = ("vllm", "stub")
_VLLM_ENGINE_CLIENT_MODULE: Final = "vllm.v1.engine.async_llm"
_ERROR_CHARS_MAX: Final = 2000


class Engine(Protocol):
    """An inference server the launcher can run as an instance."""

    @property
    def name(self) -> str: ...

    def preload(self) -> None:
        """Import everything an instance needs, in the launcher, before any fork."""

    def validate(self, options: Sequence[str]) -> None:
        """Raise ``InvalidOptions`` when the engine would reject these options."""

    def serve(self, options: Sequence[str]) -> int:
        """Run the server in the current (child) process until it stops; its exit code."""


def _parse_or_raise(parse: Callable[[], object]) -> None:
    """Run an argparse-style parse; turn its exit-on-error into ``InvalidOptions``."""
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured), contextlib.redirect_stdout(captured):
            parse()
    except SystemExit as exit_:
        lines = [line for line in captured.getvalue().splitlines() if line.strip()]
        if isinstance(exit_.code, str):
            message = exit_.code
        else:
            message = lines[-1] if lines else f"the engine's parser exited with {exit_.code}"
        raise InvalidOptions(f"invalid options: {message[:_ERROR_CHARS_MAX]}") from None
    except (ValueError, TypeError, argparse.ArgumentError) as error:
        raise InvalidOptions(f"invalid options: {str(error)[:_ERROR_CHARS_MAX]}") from None


@dataclass(frozen=True)
class StubEngine:
    """The stub engine (:mod:`fma.launcher.stub_engine`), run in the forked child."""

    name: str = "stub"

    def preload(self) -> None:
        importlib.import_module("fma.launcher.stub_engine")

    def validate(self, options: Sequence[str]) -> None:
        from fma.launcher import stub_engine

        _parse_or_raise(lambda: stub_engine.parse_args(list(options)))

    def serve(self, options: Sequence[str]) -> int:
        from fma.launcher import stub_engine

        return stub_engine.main(list(options))


@dataclass(frozen=True)
class _VllmEntry:
    make_arg_parser: Callable[[Any], Any]
    parser_class: Callable[..., Any]
    validate_parsed_serve_args: Callable[[Any], None]
    run_server: Callable[[Any], Any]
    configure_logging: Callable[[Any], None] | None


def _vllm_entry() -> _VllmEntry:
    """vLLM's serve parser, validator and server coroutine, wherever this release keeps them."""
    try:
        entry = importlib.import_module("vllm.entrypoints.launchers.api_server.entry")
        cli_args = importlib.import_module("vllm.entrypoints.launchers.cli_args")
        argparse_utils = importlib.import_module("vllm.utils.argparse_utils")
        logger = importlib.import_module("vllm.logger")
        return _VllmEntry(
            make_arg_parser=cli_args.make_arg_parser,
            parser_class=argparse_utils.FlexibleArgumentParser,
            validate_parsed_serve_args=cli_args.validate_parsed_serve_args,
            run_server=entry.run_server,
            configure_logging=getattr(logger, "configure_logging_from_args", None),
        )
    except ImportError:
        api_server = importlib.import_module("vllm.entrypoints.openai.api_server")
        cli_args = importlib.import_module("vllm.entrypoints.openai.cli_args")
        utils = importlib.import_module("vllm.utils")
        return _VllmEntry(
            make_arg_parser=cli_args.make_arg_parser,
            parser_class=utils.FlexibleArgumentParser,
            validate_parsed_serve_args=cli_args.validate_parsed_serve_args,
            run_server=api_server.run_server,
            configure_logging=None,
        )


class VllmEngine:
    """vLLM's OpenAI API server. ``preload`` imports it (several seconds, paid once)."""

    name = "vllm"

    def __init__(self) -> None:
        self._entry: _VllmEntry | None = None

    def _loaded(self) -> _VllmEntry:
        if self._entry is None:
            self._entry = _vllm_entry()
        return self._entry

    def _parse(self, options: Sequence[str]) -> Any:
        entry = self._loaded()
        parser = entry.make_arg_parser(
            entry.parser_class(description="vLLM OpenAI-Compatible RESTful API server.")
        )
        args = parser.parse_args(list(options))
        entry.validate_parsed_serve_args(args)
        return args

    def preload(self) -> None:
        self._loaded()
        # uvloop is what vLLM's own entry point runs the server under; the engine client is
        # what vLLM itself preloads into its fork server. Both are imported by every instance.
        importlib.import_module("uvloop")
        with contextlib.suppress(ImportError):
            importlib.import_module(_VLLM_ENGINE_CLIENT_MODULE)

    def validate(self, options: Sequence[str]) -> None:
        _parse_or_raise(lambda: self._parse(options))

    def serve(self, options: Sequence[str]) -> int:
        entry = self._loaded()
        args = self._parse(options)
        if entry.configure_logging is not None:
            entry.configure_logging(args)
        uvloop = importlib.import_module("uvloop")
        uvloop.run(entry.run_server(args))
        return 0


def engine_by_name(name: str) -> Engine:
    """The engine called ``name`` (one of ``ENGINE_NAMES``); raises ``ValueError``."""
    if name == "vllm":
        return VllmEngine()
    if name == "stub":
        return StubEngine()
    raise ValueError(f"unknown engine {name!r}; choose one of {', '.join(ENGINE_NAMES)}")
