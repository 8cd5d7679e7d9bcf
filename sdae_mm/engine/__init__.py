from . import hooks, optimizers, schedulers  # noqa: F401
from . import recipe  # noqa: F401,E402
from .runner import RecipeRunner, build_runner  # noqa: F401,E402
