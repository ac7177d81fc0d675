"""Who is acting: the name recorded on runs, model versions, alias moves, flags and tokens.

One rule for every layer (the store's services and the API tokens need it as much as
tracking does), so it sits beside the settings and the errors rather than in a domain
package.
"""

from __future__ import annotations

import getpass


def current_user() -> str | None:
    """The OS user name recorded on runs, versions and alias moves (None if unknown)."""
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return None
