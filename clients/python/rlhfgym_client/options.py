"""Env option values as the text the server's options codec reads (docs/env.md, "Options")."""


def option_text(value):
    """The wire's options are strings. Python's str() writes True as "True"; the codec accepts booleans in any case,
    but this sends the canonical "true"/"false". Floats use repr(), which round-trips exactly ("2.5", "1e-05").
    Strings (choices such as "segment") are sent as they are."""
    if isinstance(value, bool):  # before int: bool is a subclass of int
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)
