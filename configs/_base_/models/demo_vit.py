# The small ViT of the CPU demos: 6 blocks of width 96 (3 heads), 8-px patches, 64-px input.
# Every demo (pretraining and transfer) uses this encoder so checkpoints transfer.
demo_arch = dict(embed_dims=96, num_layers=6, num_heads=3, feedforward_channels=384)
