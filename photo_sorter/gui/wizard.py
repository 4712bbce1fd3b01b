"""The retraining wizard (QWizard) over photo_sorter.celeba / training / evaluation:
folder -> attributes -> settings -> training (live curves, cancel, resume) -> results -> install.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QDialog, QFileDialog, QFormLayout, QHBoxLayout, QHeaderView, QLabel, QLineEdit,
    QListWidget, QListWidgetItem, QPlainTextEdit, QProgressBar, QPushButton, QSpinBox,
    QTableWidget, QTableWidgetItem, QVBoxLayout, QWizard, QWizardPage,
)

from photo_sorter.attributes import DEFAULT_ATTRIBUTES, label
from photo_sorter.gui.tasks import Task, eta_text

AttrRole = Qt.ItemDataRole.UserRole + 1
BUNDLED_TFLITE = Path(__file__).resolve().parents[2] / "resources" / "weights" / "mobilenet_v2_1.0_224_quant.tflite"
WORSE = QColor("#f5b7b1")


class FolderPage(QWizardPage):
    """Choose the CelebA folder; it is read in the background and its counts are shown."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setTitle("CelebA folder")
        self.setSubTitle("Choose your CelebA download: the folder with list_attr_celeba.txt (official "
                         "layout) or list_attr_celeba.csv (Kaggle layout) and img_align_celeba/.")
        self.path = QLineEdit()
        self.path.setPlaceholderText("/path/to/celeba")
        self.path.setAccessibleName("CelebA folder")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.path, 1)
        row.addWidget(browse)
        self.info = QLabel()
        self.info.setWordWrap(True)
        self.info.setTextFormat(Qt.TextFormat.RichText)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.info)
        layout.addStretch()
        self.data = None
        self.task: Task | None = None
        self._debounce = QTimer(self, singleShot=True, interval=400)
        self._debounce.timeout.connect(self.check)
        self.path.textChanged.connect(self._changed)

    def _browse(self) -> None:
        from photo_sorter.gui.config import remember_folder, start_folder

        folder = QFileDialog.getExistingDirectory(self, "CelebA folder", self.path.text() or start_folder())
        if folder:
            remember_folder(folder)
            self.path.setText(folder)

    def _changed(self) -> None:
        self.data = None
        self.completeChanged.emit()
        self._debounce.start()

    def check(self) -> None:
        """Read the folder with celeba.load in a worker; a newer path wins over an older read."""
        self._debounce.stop()  # read once, not again when the typing pause ends
        text = self.path.text().strip()
        if not text:
            self.info.setText("")
            return
        from photo_sorter import celeba

        self.info.setText("Reading the annotation files…")
        task = Task(lambda progress, cancel: celeba.load(text), self)
        task.succeeded.connect(lambda data: self._loaded(text, data))
        task.failed.connect(lambda msg: self._failed(text, msg))
        self.task = task
        task.start()

    def _loaded(self, text: str, data) -> None:
        if text != self.path.text().strip():
            return
        self.data = data
        counts = {name: int((data.partitions == code).sum()) for name, code in
                  (("train", 0), ("validation", 1), ("test", 2))}
        missing = data.n_rows - len(data.names)
        self.info.setText(
            f"<b>{data.layout.capitalize()} layout</b>: {data.n_rows:,} annotated images, "
            f"<b>{len(data.names):,} image files found</b>"
            + (f" ({missing:,} annotated images are absent and will be skipped)" if missing else "")
            + f".<br>Partitions: {counts['train']:,} train, {counts['validation']:,} validation, "
            f"{counts['test']:,} test.<br>{len(data.attributes)} attributes; images from "
            + ", ".join(d.name for d in data.image_dirs) + ".")
        self.completeChanged.emit()

    def _failed(self, text: str, message: str) -> None:
        if text == self.path.text().strip():
            self.info.setText(f"<span style='color:#c0392b'><b>Not a usable CelebA folder:</b> "
                              f"{message}</span>")

    def isComplete(self) -> bool:
        return self.data is not None


class AttributesPage(QWizardPage):
    """Tick the attributes to learn; each shows its share of positives in the training images."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setTitle("Attributes")
        self.setSubTitle("The new model learns the ticked attributes. 'Attractive' is left out by "
                         "default: a photo organizer should not rank people by it.")
        self.list = QListWidget()
        self.list.setAccessibleName("Attributes to learn")
        self.list.itemChanged.connect(lambda _item: self.completeChanged.emit())
        buttons = QHBoxLayout()
        for text, pick in (("All", lambda a: True), ("None", lambda a: False),
                           ("Default", lambda a: a in DEFAULT_ATTRIBUTES)):
            b = QPushButton(text)
            b.setAccessibleName(f"Tick {text.lower()}")
            b.clicked.connect(lambda _=False, pick=pick: self._tick(pick))
            buttons.addWidget(b)
        buttons.addStretch()
        layout = QVBoxLayout(self)
        layout.addWidget(self.list, 1)
        layout.addLayout(buttons)

    def initializePage(self) -> None:
        data = self.wizard().page_folder.data
        rates = data.partition("train").frequencies() if (data.partitions == 0).any() else data.frequencies()
        self.list.clear()
        for a in data.attributes:
            item = QListWidgetItem(f"{label(a)}  —  {rates[a]:.0%} positive")
            item.setData(AttrRole, a)
            item.setCheckState(Qt.CheckState.Checked if a in DEFAULT_ATTRIBUTES else Qt.CheckState.Unchecked)
            self.list.addItem(item)

    def _tick(self, pick) -> None:
        for i in range(self.list.count()):
            item = self.list.item(i)
            item.setCheckState(Qt.CheckState.Checked if pick(item.data(AttrRole)) else Qt.CheckState.Unchecked)

    def chosen(self) -> list[str]:
        items = (self.list.item(i) for i in range(self.list.count()))
        return [it.data(AttrRole) for it in items if it.checkState() == Qt.CheckState.Checked]

    def isComplete(self) -> bool:
        return bool(self.chosen())


class SettingsPage(QWizardPage):
    """Init, input size, epochs, batch size, loss and where the model is written. The default
    start is the bundled ImageNet MobileNetV2 (offline); the installed model can be fine-tuned."""

    INITS = (("ImageNet MobileNetV2, bundled (offline; recommended)", "tflite"),
             ("Fine-tune the installed model", "keras"),
             ("ImageNet weights, downloaded (needs internet)", "imagenet"),
             ("None (random start: needs far more data and epochs)", "none"))
    LOSSES = (("Binary cross-entropy", "bce"),
              ("Weighted BCE (rare attributes count more)", "weighted_bce"),
              ("Focal", "focal"), ("Cosine proximity (the article's)", "cosine"))

    def __init__(self, training_dir: Path, tflite_path: Path | None, installed_model: Path | None = None,
                 parent=None):
        super().__init__(parent)
        self.setTitle("Training settings")
        self.training_dir, self.tflite_path, self.installed_model = training_dir, tflite_path, installed_model
        self.init = QComboBox()
        available = {"tflite": tflite_path is not None and Path(tflite_path).is_file(),
                     "keras": installed_model is not None and Path(installed_model).is_file()}
        for text, value in self.INITS:
            if available.get(value, True):
                self.init.addItem(text, value)
        self.init.setCurrentIndex(0)
        self.image_size = QComboBox()
        for size in (32, 64, 96, 128, 160, 224):
            self.image_size.addItem(f"{size} × {size}", size)
        self.image_size.setCurrentIndex(self.image_size.findData(96))
        self.epochs = QSpinBox(minimum=1, maximum=200, value=5)
        self.batch_size = QSpinBox(minimum=1, maximum=1024, value=32)
        self.loss = QComboBox()
        for text, value in self.LOSSES:
            self.loss.addItem(text, value)
        self.frames = QComboBox()
        self.frames.addItem("as the scan sees them (detect + align, cached once)", "pipeline")
        self.frames.addItem("the CelebA frames as they are", "original")
        self.frames.setToolTip("Training on what the scan produces makes the model right on your photos; "
                               "the first run detects the faces of every image once (about 10 min for 25k).")
        self.augment = QComboBox()
        for text, value in (("real-photo robustness", "robust"), ("the article's", "article"),
                            ("light", "light"), ("none", "none")):
            self.augment.addItem(text, value)
        self.max_images = QSpinBox(minimum=0, maximum=10_000_000, value=0, singleStep=1000)
        self.max_images.setSpecialValueText("all")
        self.name = QLineEdit(f"celeba_custom_{datetime.now():%Y%m%d_%H%M}")
        self.estimate = QLabel()
        self.estimate.setWordWrap(True)
        form = QFormLayout(self)
        form.addRow("Start from:", self.init)
        form.addRow("Input size:", self.image_size)
        form.addRow("Epochs:", self.epochs)
        form.addRow("Batch size:", self.batch_size)
        form.addRow("Loss:", self.loss)
        form.addRow("Training frames:", self.frames)
        form.addRow("Augmentation:", self.augment)
        form.addRow("Training images:", self.max_images)
        form.addRow("Model name:", self.name)
        form.addRow(self.estimate)
        self.name.textChanged.connect(lambda _t: (self.initializePage(), self.completeChanged.emit()))

    def initializePage(self) -> None:
        if self.wizard() is None or self.wizard().page_folder.data is None:
            return
        self.estimate.setStyleSheet("")
        n = int((self.wizard().page_folder.data.partitions == 0).sum())
        self.estimate.setText(f"{n:,} training images. The time per epoch is measured during the "
                              "first epoch and shown with the remaining time.")

    def config(self, celeba_root: Path, attributes: list[str]):
        from photo_sorter.training import TrainConfig

        init = self.init.currentData()
        return TrainConfig(
            celeba=str(celeba_root), out=str(self.out_path()), attributes=attributes,
            image_size=self.image_size.currentData(),
            init={"tflite": f"tflite:{self.tflite_path}", "keras": f"keras:{self.installed_model}"}.get(init, init),
            epochs=self.epochs.value(), batch_size=self.batch_size.value(),
            loss=self.loss.currentData(), max_images=self.max_images.value() or None,
            frames=self.frames.currentData(), augment=self.augment.currentData())

    def out_path(self) -> Path:
        return self.training_dir / f"{self.name.text().strip()}.keras"

    def isComplete(self) -> bool:
        """A plain file name that no earlier model uses (installed models are never overwritten)."""
        name = self.name.text().strip()
        ok = bool(name) and "/" not in name and "\\" not in name
        taken = ok and self.out_path().exists()
        self.estimate.setStyleSheet("color: #c0392b" if taken else "")
        if taken:
            self.estimate.setText(f"A model named {name} exists already; choose another name.")
        return ok and not taken


class Curves:
    """Loss and accuracy per epoch (train and validation) on a Matplotlib canvas."""

    def __init__(self):
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        self.figure = Figure(figsize=(7, 2.6), dpi=90, layout="constrained")
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.loss_ax, self.acc_ax = self.figure.subplots(1, 2)
        self.history: dict[int, dict] = {}
        self.draw()

    def add(self, epoch: int, logs: dict) -> None:
        self.history[epoch] = logs
        self.draw()

    def draw(self) -> None:
        epochs = sorted(self.history)
        xs = [e + 1 for e in epochs]
        for ax, key, title in ((self.loss_ax, "loss", "loss"), (self.acc_ax, "accuracy", "accuracy")):
            ax.clear()
            ax.set_title(title, fontsize=9)
            ax.set_xlabel("epoch", fontsize=8)
            ax.tick_params(labelsize=7)
            for prefix, style in (("", "o-"), ("val_", "s--")):
                ys = [self.history[e].get(prefix + key) for e in epochs]
                if any(y is not None for y in ys):
                    ax.plot(xs, ys, style, label="validation" if prefix else "training")
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7)
                ax.set_xticks(xs)
        self.canvas.draw_idle()


class TrainPage(QWizardPage):
    """Runs training.train in a child process (train_process): live curves, epoch/batch progress,
    Cancel and Resume. Only epochs that ran all their batches are plotted or counted; a crash of
    the child is a message here, never the end of the app."""

    POLL_MS = 100

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setTitle("Training")
        self.setSubTitle("Training runs in a separate process. Cancel keeps the finished epochs; "
                         "Resume continues after the last one.")
        self.curves = Curves()
        self.epoch_label = QLabel()
        self.epoch_label.setWordWrap(True)
        self.bar = QProgressBar()
        self.cancel_button = QPushButton("Cancel")
        self.resume_button = QPushButton("Resume")
        self.cancel_button.clicked.connect(self.cancel)
        self.resume_button.clicked.connect(self.start)
        self.log = QPlainTextEdit(readOnly=True)
        self.log.setAccessibleName("Training log")
        self.log.setMaximumBlockCount(500)
        self.log.setMaximumHeight(110)
        row = QHBoxLayout()
        row.addWidget(self.epoch_label, 1)
        row.addWidget(self.bar, 1)
        row.addWidget(self.cancel_button)
        row.addWidget(self.resume_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.curves.canvas, 1)
        layout.addLayout(row)
        layout.addWidget(self.log)
        self.timer = QTimer(self, interval=self.POLL_MS)
        self.timer.timeout.connect(self._poll)
        self.process = None
        self.card: dict | None = None
        self.config = None
        self._epoch, self._epoch_started, self._began = 0, 0.0, False

    @property
    def task(self):
        """The running training (None when none runs)."""
        return self.process

    def initializePage(self) -> None:
        wizard = self.wizard()
        config = wizard.page_settings.config(wizard.page_folder.data.root, wizard.page_attributes.chosen())
        if self.card is None or config != self.config:
            self.config, self.card = config, None
            self.curves.history.clear()
            self.curves.draw()
            self.start()

    def start(self) -> None:
        if self.process is not None:
            return
        from photo_sorter.gui.config import log_dir
        from photo_sorter.train_process import TrainingProcess

        self.process = TrainingProcess(self.config, log_dir() / "training.log")
        self._began = False  # no epoch yet: a Cancel now stops the child at once
        self.cancel_button.setEnabled(True)
        self.resume_button.setEnabled(False)
        self.epoch_label.setText("Preparing (starting TensorFlow and reading the images)…")
        self.bar.setMaximum(0)
        self.process.start()
        self.timer.start()

    def cancel(self) -> None:
        if self.process is None:
            return
        if not self._began:
            # still preparing (TensorFlow, reading, detecting faces), which only looks at Cancel
            # when it is over (minutes): stop the child now; nothing finished is lost (no epoch
            # ran, and the frame cache keeps its finished chunks), and Resume starts again
            self.process.kill()
            self._ended()
            self.epoch_label.setText("Cancelled before the first epoch. Resume starts again.")
            self.resume_button.setEnabled(True)
            return
        self.process.cancel()
        self.cancel_button.setEnabled(False)
        self.epoch_label.setText("Cancelling after this batch…")

    def stop(self) -> None:
        """The wizard is closing: ask for a cancel, give the child a moment, then end it."""
        if self.process is not None:
            self.process.cancel()
            self.process.process.join(5)
            self.process.kill()
            self._ended()

    def _poll(self) -> None:
        if self.process is None:
            return
        for event in self.process.poll():
            kind, *args = event
            if kind == "log":
                self.log.appendPlainText(args[0])
            elif kind == "epoch_begin":
                self._epoch_begin(*args)
            elif kind == "batch":
                self._batch(*args)
            elif kind == "epoch_end":
                self._epoch_end(*args)
            elif kind == "partial_epoch":
                epoch, done, steps = args
                self.log.appendPlainText(f"epoch {epoch + 1} stopped after {done}/{steps} batches: "
                                         "not kept; Resume runs it again")
            elif kind == "done":
                self._done(*args)
            elif kind == "failed":
                self._failed(*args)
        if self.process is not None and not self.process.running():
            self._ended()

    def _epoch_begin(self, epoch: int) -> None:
        import time

        self._epoch, self._epoch_started, self._began = epoch, time.monotonic(), True

    def _batch(self, done: int, steps: int, loss: float) -> None:
        if self.process is not None and self.process.cancelled:
            return
        self.bar.setMaximum(steps)
        self.bar.setValue(done)
        eta = eta_text(self._epoch_started, done, steps)
        self.epoch_label.setText(f"Epoch {self._epoch + 1}/{self.config.epochs} · loss {loss:.3f}"
                                 + (f" · {eta} in this epoch" if eta else ""))

    def _epoch_end(self, epoch: int, logs: dict) -> None:
        self.curves.add(epoch, logs)
        self.log.appendPlainText(f"epoch {epoch + 1}: " + ", ".join(f"{k} {v:.4f}" for k, v in logs.items()))

    def _done(self, card: dict) -> None:
        if card.get("cancelled"):
            n = len(self.curves.history)
            self.epoch_label.setText(f"Cancelled with {n} of {self.config.epochs} epochs finished. "
                                     "Resume continues after the last finished epoch.")
            self.resume_button.setEnabled(True)
            return
        self.card = card
        self.epoch_label.setText(f"Done: {card['training']['epochs_run']} epoch(s) in "
                                 f"{card['training']['seconds']:.0f} s. Saved {self.config.out}.")
        self.bar.setMaximum(1)
        self.bar.setValue(1)

    def _failed(self, message: str) -> None:
        self.epoch_label.setText(f"<span style='color:#c0392b'><b>Training failed:</b> {message}</span>")
        self.resume_button.setEnabled(True)

    def _ended(self) -> None:
        self.timer.stop()
        self.process = None
        self.cancel_button.setEnabled(False)
        self.completeChanged.emit()

    def isComplete(self) -> bool:
        return self.card is not None and self.process is None


class ResultsPage(QWizardPage):
    """Per-attribute validation accuracy and balanced accuracy beside the published figures;
    rows where the new model is worse than the installed one are highlighted."""

    COLUMNS = (("attribute", "Attribute"), ("accuracy", "Accuracy %"),
               ("balanced_accuracy", "Balanced acc. %"), ("installed_accuracy", "Installed model %"),
               ("lnet_anet", "LNet+ANet %"), ("article", "Article %"), ("majority", "Majority %"))

    def __init__(self, installed_card: dict | None, parent=None):
        super().__init__(parent)
        self.setTitle("Results")
        self.installed_card = installed_card
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.table = QTableWidget(0, len(self.COLUMNS))
        self.table.setAccessibleName("Results per attribute")
        self.table.setHorizontalHeaderLabels([c[1] for c in self.COLUMNS])
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        layout = QVBoxLayout(self)
        layout.addWidget(self.note)
        layout.addWidget(self.table, 1)

    def initializePage(self) -> None:
        from photo_sorter import evaluation

        card = self.wizard().page_train.card
        report = card["metrics"]["validation"]
        installed = (self.installed_card or {}).get("metrics", {}).get("validation")
        rows = evaluation.comparison_rows(report, installed)
        self.rows = rows
        all_rows = [*rows, evaluation.mean_row(rows)]
        self.table.setRowCount(len(all_rows))
        bold = QFont(self.font())
        bold.setBold(True)
        for r, row in enumerate(all_rows):
            worse = (row.get("installed_accuracy") is not None and row["attribute"] != "mean"
                     and row["accuracy"] < row["installed_accuracy"])
            for c, (key, _title) in enumerate(self.COLUMNS):
                value = row.get(key)
                text = label(value) if key == "attribute" and value != "mean" else (
                    "Mean" if key == "attribute" else ("–" if value is None else f"{value:.1f}"))
                item = QTableWidgetItem(text)
                if key != "attribute":
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if worse:
                    item.setBackground(QBrush(WORSE))
                if row["attribute"] == "mean":
                    item.setFont(bold)
                self.table.setItem(r, c, item)
        n_worse = sum(1 for row in rows if row.get("installed_accuracy") is not None
                      and row["accuracy"] < row["installed_accuracy"])
        self.note.setText(
            f"Measured on {report['n_images']:,} validation images with the calibrated thresholds. "
            "LNet+ANet and the article are published test-set figures; Majority is always answering "
            "the more common value. "
            + (f"<b>{n_worse}</b> attribute(s) highlighted where the installed model is better."
               if installed else "No installed model with validation figures to compare with."))


class InstallPage(QWizardPage):
    """Finish installs: the model (already saved in the user models dir, beside the earlier ones)
    becomes the library's active model; optionally every face is predicted again with it."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setTitle("Install")
        self.info = QLabel()
        self.info.setWordWrap(True)
        self.repredict = QCheckBox("Re-run attribute prediction on the library now "
                                   "(the earlier model's predictions are kept)")
        self.repredict.setChecked(True)
        self.warning = QLabel()
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet("color: #b03a2e")
        self.anyway = QCheckBox("Install it anyway")
        self.anyway.toggled.connect(lambda _on: self.completeChanged.emit())
        layout = QVBoxLayout(self)
        layout.addWidget(self.info)
        layout.addWidget(self.warning)
        layout.addWidget(self.anyway)
        layout.addWidget(self.repredict)
        layout.addStretch()
        self.setFinalPage(True)
        self.useless = False

    def initializePage(self) -> None:
        from photo_sorter.library import majority_only

        page = self.wizard().page_train
        out = page.config.out
        self.info.setText(
            f"The new model is saved as <b>{out}</b> with its card. Press Finish to make it the "
            "active model: new scans use it and the filter, clusters and best-smiling views read "
            "its predictions. The previous model stays in the library with its predictions: switch "
            "back any time in Tools › Manage attribute models.")
        self.useless = majority_only(page.card or {})
        self.warning.setText("<b>This model is no better than always giving the more common answer</b> "
                             "(balanced accuracy 50 % on every attribute): its tags would say nothing. "
                             "Train longer or on more images before installing it." if self.useless else "")
        self.warning.setVisible(self.useless)
        self.anyway.setVisible(self.useless)
        self.anyway.setChecked(False)

    def isComplete(self) -> bool:
        return not self.useless or self.anyway.isChecked()


class RetrainWizard(QWizard):
    """Retrain the attribute model on CelebA. `installed_card` is the active model's card (for the
    comparison column); `models_dir` receives the new model (its resumable work folder beside it).
    Finishing emits `install(model_path, repredict)`."""

    install = Signal(str, bool)

    def __init__(self, models_dir: Path, installed_card: dict | None = None,
                 tflite_path: Path | None = BUNDLED_TFLITE, installed_model: Path | None = None, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Retrain the attribute model")
        self.setWizardStyle(QWizard.WizardStyle.ClassicStyle)
        self.resize(860, 640)
        self.page_folder = FolderPage()
        self.page_attributes = AttributesPage()
        self.page_settings = SettingsPage(Path(models_dir), tflite_path, installed_model)
        self.page_train = TrainPage()
        self.page_results = ResultsPage(installed_card)
        self.page_install = InstallPage()
        for page in (self.page_folder, self.page_attributes, self.page_settings, self.page_train,
                     self.page_results, self.page_install):
            self.addPage(page)

    def done(self, result: int) -> None:
        """Closing the wizard stops training (its finished epochs are kept for a later Resume)."""
        self.page_train.stop()
        if self.page_folder.task is not None:
            self.page_folder.task.cancel()
            self.page_folder.task.wait()
        if result == QDialog.DialogCode.Accepted and self.page_train.card is not None:
            self.install.emit(self.page_train.config.out, self.page_install.repredict.isChecked())
        super().done(result)
