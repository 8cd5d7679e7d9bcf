from .layer_decay_constructor import ViTLayerDecayOptimWrapperConstructor  # noqa: F401
from .trainable_constructor import TrainableOptimWrapperConstructor  # noqa: F401,E402
