"""Exporting the attribute model: the TFLite file gives the Keras model's probabilities."""

import json

import numpy as np
import pytest
from PIL import Image

from conftest import SAMPLE_PHOTOS
from photo_sorter.model import AttributeModel, ModelError, export_model

pytestmark = pytest.mark.slow  # model export (TFLite conversion)


@pytest.fixture(scope="module")
def faces():
    """Aligned frames of real faces from the sample photos (MTCNN + alignment)."""
    from photo_sorter import align

    frames = []
    for name in ("obama_official_portrait_2012.jpg", "biden_blue_room_2010_crop.jpg",
                 "astronaut_eileen_collins_nasa.png"):
        with Image.open(SAMPLE_PHOTOS / name) as im:
            frame = align.pipeline_frame(np.asarray(im.convert("RGB")))
        assert frame is not None
        frames.append(frame)
    return np.stack(frames)


def assert_same_probabilities(exported, model, faces):
    """Float32 through ~150 layers with other kernels (graph mode, XNNPACK) rounds differently
    from eager Keras: probabilities agree to about a hundredth, decisions agree unless a
    probability sits within 0.05 of its threshold."""
    keras_probs = model.predict(faces)
    diff = np.abs(exported - keras_probs)
    assert diff.mean() < 3e-3 and diff.max() < 0.05, (diff.mean(), diff.max())
    t = np.array([model.thresholds[a] for a in model.attributes])
    clear = np.abs(keras_probs - t) > 0.05
    np.testing.assert_array_equal((exported >= t)[clear], (keras_probs >= t)[clear])


def test_tflite_export_matches_keras(model, faces, tmp_path):
    import tensorflow as tf

    path = export_model(model, "tflite", tmp_path / "m.tflite")
    assert json.loads((tmp_path / "m.json").read_text())["attributes"] == model.attributes
    interpreter = tf.lite.Interpreter(model_path=str(path))
    inp = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(inp["index"], faces.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(inp["index"], faces)
    interpreter.invoke()
    lite = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    assert_same_probabilities(lite, model, faces)


def test_savedmodel_export_matches_keras(model, faces, tmp_path):
    import tensorflow as tf

    path = export_model(model, "savedmodel", tmp_path / "sm")
    loaded = tf.saved_model.load(str(path))
    out = loaded.signatures["serving_default"](frame=tf.constant(faces))
    assert_same_probabilities(next(iter(out.values())).numpy(), model, faces)


def test_unknown_format_and_bad_model_files(model, tmp_path):
    with pytest.raises(ValueError, match="unknown export format"):
        export_model(model, "onnx", tmp_path / "m.onnx")
    with pytest.raises(ModelError, match="does not exist"):
        AttributeModel.load(tmp_path / "missing.keras")
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"not a zip")
    (tmp_path / "bad.json").write_text(json.dumps({"attributes": ["Smiling"], "thresholds": {"Smiling": 0.5}}))
    with pytest.raises(ModelError, match="cannot be loaded"):
        AttributeModel.load(bad)
