"""Env option values as the text the server's options codec reads (docs/env.md, "Options")."""
import numbers

import numpy as np


def option_text(value):
    """The wire's options are strings. Python's str() writes True as "True"; the codec accepts booleans in any case,
    but this sends the canonical "true"/"false". Floats use repr() of a Python float, which round-trips exactly
    ("2.5", "1e-05"); numpy scalars are converted first (numpy >= 2's repr of np.float64(2.5) is "np.float64(2.5)").
    Strings (choices such as "segment") are sent as they are."""
    if isinstance(value, (bool, np.bool_)):  # before int: bool is a subclass of int
        return "true" if value else "false"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return repr(float(value))
    return str(value)
