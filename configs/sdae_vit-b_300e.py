# The flagship recipe: SdAE ViT-B/16, 300 epochs, ImageNet-1k, 8 GPUs x 96 images.
#   bash tools/dist_train.sh configs/sdae_vit-b_300e.py 8
_base_ = ['./sdae/sdae_vit-base-p16_8xb96-amp-coslr-300e_in1k.py']
