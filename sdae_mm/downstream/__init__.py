from . import seg  # noqa: F401  (mmseg: SdMIMSegViT, DigitScenesDataset)
from . import det  # noqa: F401  (mmdet: PlainViT, ViTDet, SimpleFPN, LN2d)
