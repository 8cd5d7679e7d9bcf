from . import hooks, optimizers  # noqa: F401
from . import schedulers  # noqa: F401,E402
