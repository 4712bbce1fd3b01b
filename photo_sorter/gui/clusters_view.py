"""Clusters view: choose attributes and k (or auto), run K-Means in the background, browse the
clusters with their sheet (member mosaic, mean face, eigenfaces) and open a cluster's photos."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QComboBox, QFormLayout, QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QPushButton,
    QScrollArea, QSpinBox, QSplitter, QVBoxLayout, QWidget,
)
from sqlalchemy import select
from sqlalchemy.orm import Session

from photo_sorter.attributes import CELEBA_ATTRIBUTES, CLUSTER_ATTRIBUTES, label
from photo_sorter.gui.tasks import Task
from photo_sorter.store import ClusterRun

AttrRole = Qt.ItemDataRole.UserRole + 1


class ClustersView(QWidget):
    """`photosRequested(rows)` asks the window to show a cluster's photos in the grid."""

    photosRequested = Signal(list)

    def __init__(self, engine, sheets_dir: Path, parent=None):
        super().__init__(parent)
        self.engine, self.sheets_dir = engine, Path(sheets_dir)
        self.task: Task | None = None
        self.run_data: dict | None = None

        self.attribute_list = QListWidget()
        for a in CELEBA_ATTRIBUTES:
            item = QListWidgetItem(label(a))
            item.setData(AttrRole, a)
            item.setCheckState(Qt.CheckState.Checked if a in CLUSTER_ATTRIBUTES else Qt.CheckState.Unchecked)
            self.attribute_list.addItem(item)
        self.k_spin = QSpinBox()
        self.k_spin.setRange(1, 30)
        self.k_spin.setSpecialValueText("auto")  # 1 (the minimum) reads "auto": one cluster says nothing
        self.k_spin.setValue(1)
        self.run_button = QPushButton("Run clustering")
        self.run_button.clicked.connect(self.run_clustering)
        self.runs_combo = QComboBox()
        self.runs_combo.activated.connect(lambda i: self.load(self.runs_combo.itemData(i)))
        form = QFormLayout()
        form.addRow("k (clusters):", self.k_spin)
        form.addRow("Earlier runs:", self.runs_combo)
        left = QVBoxLayout()
        left.addWidget(QLabel("Attributes to cluster on:"))
        left.addWidget(self.attribute_list, 1)
        left.addLayout(form)
        left.addWidget(self.run_button)
        left_w = QWidget()
        left_w.setLayout(left)

        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.cluster_list = QListWidget()
        self.cluster_list.setWordWrap(True)
        self.cluster_list.currentRowChanged.connect(self._show_cluster)
        self.cluster_list.itemDoubleClicked.connect(lambda _item: self.open_current())
        self.open_button = QPushButton("Show the cluster's photos")
        self.open_button.clicked.connect(self.open_current)
        middle = QVBoxLayout()
        middle.addWidget(self.summary)
        middle.addWidget(self.cluster_list, 1)
        middle.addWidget(self.open_button)
        middle_w = QWidget()
        middle_w.setLayout(middle)

        self.sheet = QLabel()
        self.sheet.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.sheet.setWordWrap(True)
        self.sheet_scroll = QScrollArea()
        self.sheet_scroll.setWidgetResizable(True)
        self.sheet_scroll.setWidget(self.sheet)

        split = QSplitter()
        for w in (left_w, middle_w, self.sheet_scroll):
            split.addWidget(w)
        split.setSizes([220, 300, 760])
        layout = QHBoxLayout(self)
        layout.addWidget(split)
        self.refresh_runs()

    def chosen_attributes(self) -> list[str]:
        items = (self.attribute_list.item(i) for i in range(self.attribute_list.count()))
        return [it.data(AttrRole) for it in items if it.checkState() == Qt.CheckState.Checked]

    def refresh_runs(self) -> None:
        """List stored runs, newest first, and show the newest."""
        with Session(self.engine) as s:
            runs = s.execute(select(ClusterRun.id, ClusterRun.created_at, ClusterRun.k)
                             .order_by(ClusterRun.id.desc())).all()
        self.runs_combo.clear()
        for r in runs:
            self.runs_combo.addItem(f"#{r.id}: k={r.k}, {r.created_at:%Y-%m-%d %H:%M}", r.id)
        self.runs_combo.setEnabled(bool(runs))
        if runs:
            self.load(runs[0].id)
        else:
            self._show({"clusters": []}, "No clustering yet. Choose the attributes and k, then "
                       "press Run clustering (the library needs scanned faces).")

    def run_clustering(self) -> None:
        if self.task is not None:
            return
        from photo_sorter import clusters

        attributes, k = self.chosen_attributes(), self.k_spin.value()
        engine, out_dir = self.engine, self.sheets_dir

        def work(progress, cancel):
            return clusters.run_clustering(engine, attributes, "auto" if k == 1 else k, 0, out_dir)

        self.task = Task(work, self)
        self.task.succeeded.connect(lambda result: self.refresh_runs())
        self.task.failed.connect(lambda msg: self.summary.setText(f"<b>Cannot cluster:</b> {msg}"))
        self.task.finished.connect(self._task_ended)
        self.run_button.setEnabled(False)
        self.run_button.setText("Clustering…")
        self.task.start()

    def _task_ended(self) -> None:
        self.task = None
        self.run_button.setEnabled(True)
        self.run_button.setText("Run clustering")

    def load(self, run_id: int) -> None:
        from photo_sorter import clusters

        data = clusters.load_run(self.engine, run_id)
        sil = f", silhouette {data['silhouette']:.2f}" if data["silhouette"] is not None else ""
        auto = " (chosen automatically)" if data["params"].get("k_requested") == "auto" else ""
        n = data["params"].get("n_faces", sum(c["size"] for c in data["clusters"]))
        self._show(data, f"<b>Run #{data['run_id']}</b>: {data['k']} clusters{auto}{sil}, {n} faces, "
                   f"on {', '.join(label(a) for a in data['attributes'])}.")
        self.runs_combo.setCurrentIndex(max(0, self.runs_combo.findData(run_id)))

    def _show(self, data: dict, summary: str) -> None:
        self.run_data = data
        self.summary.setText(summary)
        self.cluster_list.clear()
        for c in data["clusters"]:
            self.cluster_list.addItem(f"{c['index'] + 1}. {c['name']}\n{c['size']} face{'s' if c['size'] != 1 else ''}")
        self.open_button.setEnabled(bool(data["clusters"]))
        if data["clusters"]:
            self.cluster_list.setCurrentRow(0)
        else:
            self.sheet.setPixmap(QPixmap())
            self.sheet.setText("")

    def _show_cluster(self, row: int) -> None:
        if not self.run_data or row < 0:
            return
        cluster = self.run_data["clusters"][row]
        pixmap = QPixmap(cluster["sheet"]) if cluster["sheet"] else QPixmap()
        if pixmap.isNull():
            self.sheet.setPixmap(QPixmap())
            self.sheet.setText("No sheet for this cluster (its faces have no stored crops).")
        else:
            width = max(400, self.sheet_scroll.viewport().width() - 8)
            self.sheet.setPixmap(pixmap.scaledToWidth(min(width, pixmap.width()),
                                                      Qt.TransformationMode.SmoothTransformation))

    def open_current(self) -> None:
        row = self.cluster_list.currentRow()
        if self.run_data and row >= 0:
            members = self.run_data["clusters"][row]["members"]
            photo_ids = list(dict.fromkeys(m["photo_id"] for m in members))
            self.photosRequested.emit([{"id": i} for i in photo_ids])
