"""Child process of test_training.py's MirroredStrategy test: TensorFlow's logical devices can only
be configured before it initialises them, so this runs alone. It splits the CPU into 2 logical
devices and trains the same tiny run on 1 device (batch 2b, learning rate L) and, through the
command line, with --devices 2 (batch b per device, L / 2, which it scales back to L): the same
global batch and step. Prints one JSON line: each run's history, device count, distribution and
the predictions of its saved model loaded without the strategy; and what --devices 3 says.

usage: python tests/mirrored_run.py FOLDER
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path

import tensorflow as tf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's photo_sorter
tf.config.set_visible_devices([], "GPU")  # the same test on a machine with a GPU
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
from celeba_factory import make_celeba  # noqa: E402

from photo_sorter import celeba  # noqa: E402
from photo_sorter.cli import main as cli_main  # noqa: E402
from photo_sorter.data import make_dataset  # noqa: E402
from photo_sorter.training import TrainConfig, train  # noqa: E402

folder = Path(sys.argv[1])
# 18 train images: 16 to fit (one global batch, so each step sees all of them whatever the
# order: Keras takes the first pass over the data to build a model under a strategy, so
# 2 devices train on the second shuffle of the stream), 2 to select, 4 to validate
root = make_celeba(folder / "celeba", n=22, partitions=(18 / 22, 4 / 22), seed=5)
common = dict(celeba=str(root), attributes=["Smiling", "Male"], image_size=32, alpha=0.35, epochs=2,
              augment="none", dropout=0.0, seed=7, frames="original", patience=100, optimizer="adadelta")
b, lr = 8, 1.0
data = celeba.load(root)
frames = next(iter(make_dataset(data.paths, data.labels, batch_size=22)))[0]


def result(out: Path, card: dict) -> dict:
    model = keras.saving.load_model(out, compile=False)  # no strategy here
    return {"history": card["history"], "devices": card["training"]["devices"],
            "distribution": json.loads((out.with_suffix(".results") / "run.json").read_text())["distribution"],
            "probs": model.predict(frames, verbose=0).tolist()}


one_out = folder / "one.keras"
one = result(one_out, train(TrainConfig(out=str(one_out), batch_size=2 * b, learning_rate=lr, **common),
                            log=lambda *_: None))
two_out = folder / "two.keras"
summary = io.StringIO()
with contextlib.redirect_stdout(summary):
    code = cli_main(["train", "--celeba", str(root), "--attributes", "Smiling", "Male", "--image-size", "32",
                     "--alpha", "0.35", "--epochs", "2", "--augment", "none", "--dropout", "0", "--seed", "7",
                     "--frames", "original", "--patience", "100", "--optimizer", "adadelta", "--batch-size", str(b),
                     "--learning-rate", str(lr / 2), "--devices", "2", "--out", str(two_out), "--json"])
assert code == 0, code
out = summary.getvalue()  # the run's log, then the JSON summary
two = {**result(two_out, json.loads(two_out.with_suffix(".json").read_text())),
       "summary_devices": json.loads(out[out.rindex('{\n  "model"'):])["devices"],
       "log": [line for line in out.splitlines() if line.startswith("MirroredStrategy")]}
err = io.StringIO()
with contextlib.redirect_stderr(err):
    code = cli_main(["train", "--celeba", str(root), "--devices", "3", "--out", str(folder / "three.keras")])
print(json.dumps({"one": one, "two": two, "three": {"code": code, "stderr": err.getvalue()}}))
