"""The one exception users see: bad input, reported in a paragraph and exit code 2, never a traceback."""


class UserError(Exception):
    """An error the user can fix (config, data, paths). The CLI prints it and exits with code 2."""


class ConfigError(UserError):
    """A config file or override is invalid."""
