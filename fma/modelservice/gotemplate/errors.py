"""The one error a template raises, whether it fails to parse or to execute."""


class TemplateError(Exception):
    """A template that cannot be parsed or executed.

    ``str(error)`` is one line, ``line N: message`` when the line is known, so a caller can
    prefix it with the template's name (a file and a field) and show it as is.
    """

    def __init__(self, message: str, line: int | None = None) -> None:
        self.message = message
        self.line = line
        super().__init__(f"line {line}: {message}" if line is not None else message)
