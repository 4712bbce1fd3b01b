"""photo_sorter: organise a photo library by face attributes (CelebA, MobileNetV2, MTCNN)."""

__version__ = "0.1.0"
