"""Transfer modules that mmseg and mmdet lack for plain ViTs.

Nothing is imported here: a config imports the library it needs,
``sdae_mm.downstream.seg`` (mmseg) or ``sdae_mm.downstream.det`` (mmdet), through
``custom_imports``.
"""
