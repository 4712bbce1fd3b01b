"""The ImageNet start read from the quantized tflite file: the converted Keras backbone plus the
file's own classifier must predict the same ImageNet classes as the tflite interpreter."""

import numpy as np
import pytest
from PIL import Image

from conftest import SAMPLE_PHOTOS

pytestmark = pytest.mark.slow  # training from TFLite weights


@pytest.fixture(scope="module")
def converted(request):
    from conftest import SHARED

    path = SHARED / "weights" / "mobilenet_v2_1.0_224_quant.tflite"
    if not path.is_file():
        pytest.skip("../shared/weights is not available")
    import keras

    from photo_sorter.tflite_init import TFLiteWeights, load_into

    weights = TFLiteWeights(path)
    backbone = keras.applications.MobileNetV2(input_shape=(224, 224, 3), include_top=False,
                                              weights=None, pooling="avg")
    assert load_into(backbone, weights) == 52
    return weights, backbone


@pytest.mark.parametrize("name", ["noface_cat_chelsea_cc0.png", "noface_coffee_cc0.png",
                                  "noface_rocket_spacex_pd.jpg", "astronaut_eileen_collins_nasa.png"])
def test_converted_backbone_agrees_with_tflite(converted, name):
    weights, backbone = converted
    with Image.open(SAMPLE_PHOTOS / name) as im:
        image = np.asarray(im.convert("RGB").resize((224, 224), Image.BILINEAR))
    kernel, bias = weights.classifier()
    features = np.asarray(backbone(image[None].astype(np.float32) / 127.5 - 1.0))
    ours = (features @ kernel + bias)[0]
    theirs = weights.predict(image)
    assert int(np.argmax(ours)) == int(np.argmax(theirs))
    assert len(set(np.argsort(-ours)[:3]) & set(np.argsort(-theirs)[:3])) >= 2


def test_known_classes(converted):
    """The file's documented answers: the cat is 286 'Egyptian cat', the coffee 968 'espresso'."""
    weights, _ = converted
    for name, cls in (("noface_cat_chelsea_cc0.png", 286), ("noface_coffee_cc0.png", 968)):
        with Image.open(SAMPLE_PHOTOS / name) as im:
            image = np.asarray(im.convert("RGB").resize((224, 224), Image.BILINEAR))
        assert int(np.argmax(weights.predict(image))) == cls
