from .layer_decay_constructor import ViTLayerDecayOptimWrapperConstructor  # noqa: F401
