"""An ImageNet start for the Keras MobileNetV2 backbone, read from a quantized TF-slim .tflite file.

The file (Google's MobileNetV2 1.0/224, quantization-aware trained, uint8) has batch norm folded into
each convolution. We dequantize every kernel and bias and load them into Keras' MobileNetV2: the
kernel goes to the convolution, the folded bias to the batch-norm beta, and the batch norm is made
an identity (gamma 1, mean 0, variance 1 - epsilon) so that fine-tuning starts from the same function.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# Keras MobileNetV2 layer name -> TF-slim scope in the tflite file, with the batch-norm layer name.
def _layer_map() -> list[tuple[str, str, str]]:
    pairs = [("Conv1", "MobilenetV2/Conv/", "bn_Conv1"),
             ("expanded_conv_depthwise", "MobilenetV2/expanded_conv/depthwise/", "expanded_conv_depthwise_BN"),
             ("expanded_conv_project", "MobilenetV2/expanded_conv/project/", "expanded_conv_project_BN")]
    for i in range(1, 17):
        for part in ("expand", "depthwise", "project"):
            pairs.append((f"block_{i}_{part}", f"MobilenetV2/expanded_conv_{i}/{part}/", f"block_{i}_{part}_BN"))
    pairs.append(("Conv_1", "MobilenetV2/Conv_1/", "Conv_1_bn"))
    return pairs


class TFLiteWeights:
    """Dequantized tensors of a tflite file, looked up by TF-slim scope."""

    def __init__(self, path: str | Path):
        import tensorflow as tf

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"tflite file {path} does not exist")
        self.path = path
        self.interpreter = tf.lite.Interpreter(
            model_path=str(path), experimental_preserve_all_tensors=True,
            experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        )
        self.interpreter.allocate_tensors()
        self.details = {d["name"]: d for d in self.interpreter.get_tensor_details()}

    def tensor(self, name: str) -> np.ndarray:
        d = self.details[name]
        q = self.interpreter.get_tensor(d["index"]).astype(np.float32)
        params = d["quantization_parameters"]
        scales, zeros = params["scales"], params["zero_points"]
        if len(scales) == 0:
            return q
        shape = [1] * q.ndim
        if len(scales) > 1:
            shape[params["quantized_dimension"]] = -1
        return (q - zeros.reshape(shape)) * scales.reshape(shape)

    def _named(self, scope: str, suffix: str) -> np.ndarray:
        return self.tensor(next(n for n in self.details if n.startswith(scope) and n.endswith(suffix)))

    def scope(self, scope: str) -> tuple[np.ndarray, np.ndarray]:
        """(kernel, bias) of a convolution scope, kernel as tflite stores it."""
        return self._named(scope, "weights_quant/FakeQuantWithMinMaxVars"), self._named(scope, "_Fold_bias")

    def classifier(self) -> tuple[np.ndarray, np.ndarray]:
        """The ImageNet classifier (1001 classes, 0 = background) as a Dense kernel [1280, 1001]."""
        scope = "MobilenetV2/Logits/Conv2d_1c_1x1/"
        kernel = self._named(scope, "weights_quant/FakeQuantWithMinMaxVars")
        return kernel.reshape(kernel.shape[0], -1).T, self._named(scope, "_bias")

    def predict(self, image_224: np.ndarray) -> np.ndarray:
        """Class scores of the tflite model itself for one uint8 [224, 224, 3] image."""
        inp = self.interpreter.get_input_details()[0]
        self.interpreter.set_tensor(inp["index"], image_224[None].astype(np.uint8))
        self.interpreter.invoke()
        out = self.interpreter.get_output_details()[0]
        return self.interpreter.get_tensor(out["index"])[0].astype(np.float32)


def load_into(backbone, weights: TFLiteWeights) -> int:
    """Copy the dequantized weights into a keras.applications.MobileNetV2 (alpha 1.0).
    Returns the number of convolution layers loaded."""
    count = 0
    for layer_name, scope, bn_name in _layer_map():
        kernel, bias = weights.scope(scope)
        layer = backbone.get_layer(layer_name)
        # conv [O, H, W, I] -> [H, W, I, O]; depthwise [1, H, W, C] -> [H, W, C, 1]: the same move
        kernel = kernel.transpose(1, 2, 3, 0)
        expected = layer.get_weights()[0].shape
        if kernel.shape != expected:
            raise ValueError(f"{layer_name}: tflite kernel {kernel.shape} does not fit {expected}"
                             " (the tflite start needs alpha 1.0)")
        layer.set_weights([kernel])
        bn = backbone.get_layer(bn_name)
        n = bias.shape[0]
        bn.set_weights([np.ones(n, np.float32), bias.astype(np.float32),
                        np.zeros(n, np.float32), np.full(n, 1.0 - bn.epsilon, np.float32)])
        count += 1
    return count
