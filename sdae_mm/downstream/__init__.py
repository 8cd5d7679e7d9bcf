from . import det  # noqa: F401  (mmdet: PlainViT, ViTDet, SimpleFPN, LN2d)
