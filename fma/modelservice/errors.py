"""The one error rendering raises: bad input, named by where it came from and which field."""

from typing import Literal

Source = Literal["modelservice", "baseconfig", "option"]


class RenderError(Exception):
    """Input a ModelService cannot be rendered from.

    ``source`` says which input is at fault (the ModelService, the BaseConfig, or a command-line
    option, whose name is then ``field``); ``str(error)`` is ``field: message``, one line.
    """

    def __init__(self, source: Source, field: str, message: str) -> None:
        self.source: Source = source
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")
