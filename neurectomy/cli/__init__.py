"""The ``neurectomy`` command (Typer): ``serve``, ``agents``, ``ask``, ``vault``, ``sigma``, ``tasks``, ..."""

from neurectomy.cli._app import app, main

__all__ = ("app", "main")
