"""The argument parser of gansweep's own subcommands: a bad flag is one line, exit 2.

argparse prints its usage block and exits on a bad flag value (``--trials abc``); this
parser raises ConfigError instead, which the CLI prints as one line like any bad input.
"""

from __future__ import annotations

import argparse
from typing import NoReturn

from gansweep.errors import ConfigError


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser whose errors are ConfigErrors naming the command."""

    def error(self, message: str) -> NoReturn:
        """Raise the parse error as one line (``gansweep sweep: argument --trials: invalid int value: 'abc'``)."""
        raise ConfigError(f"{self.prog}: {message} (see {self.prog} --help)")
