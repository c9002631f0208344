"""The errors of bad input: a :class:`UserError` (or one of its kinds) is what users see, reported in a paragraph
and exit code 2, never a traceback; a :class:`SettingError` is a component's rule that a setting breaks, which the
config loader reports as a :class:`ConfigError` naming the file."""


class UserError(Exception):
    """An error the user can fix (config, data, paths). The CLI prints it and exits with code 2."""


class ConfigError(UserError):
    """A config file or override is invalid."""


class SettingError(ValueError):
    """One setting breaks a rule its component states (a score that needs equal sizes); the config loader turns
    it into a :class:`ConfigError` naming the file, the key and its value."""

    def __init__(self, key: str, reason: str):
        super().__init__(f"{key} {reason}")
        self.key, self.reason = key, reason
