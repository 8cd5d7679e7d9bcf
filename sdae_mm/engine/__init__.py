from . import hooks, optimizers  # noqa: F401
from . import schedulers  # noqa: F401,E402
from .runner import RecipeRunner, build_runner  # noqa: F401,E402
from . import recipe  # noqa: F401,E402
