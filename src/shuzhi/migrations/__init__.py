"""One migration history for SQLite and PostgreSQL. ``metadata`` is every table."""

from shuzhi.brain import models as _brain  # noqa: F401
from shuzhi.catalog import models as _catalog  # noqa: F401
from shuzhi.core import models as _core  # noqa: F401
from shuzhi.core import stamps as _stamps  # noqa: F401
from shuzhi.core.db import Base
from shuzhi.gateway import models as _gateway  # noqa: F401
from shuzhi.lake import models as _lake  # noqa: F401
from shuzhi.loop import models as _loop  # noqa: F401
from shuzhi.notify import models as _notify  # noqa: F401
from shuzhi.orgs import models as _orgs  # noqa: F401
from shuzhi.regions import models as _regions  # noqa: F401

metadata = Base.metadata
