"""Clusters view: choose attributes and k (or auto), run K-Means in the background, browse the
clusters with their sheet (member mosaic, mean face, eigenfaces) and open a cluster's photos."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QColor, QPixmap
from PySide6.QtWidgets import (
    QComboBox, QFormLayout, QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QPushButton,
    QScrollArea, QSpinBox, QSplitter, QVBoxLayout, QWidget,
)
from sqlalchemy import select
from sqlalchemy.orm import Session

from photo_sorter.attributes import CLUSTER_ATTRIBUTES, DEFAULT_ATTRIBUTES, label
from photo_sorter.gui.tasks import Task
from photo_sorter.library import run_outdated
from photo_sorter.store import ClusterRun

AttrRole = Qt.ItemDataRole.UserRole + 1


class ClustersView(QWidget):
    """`photosRequested(rows)` asks the window to show a cluster's photos in the grid."""

    photosRequested = Signal(list, str)  # photo rows, what they are ("Cluster 2: Smiling")

    def __init__(self, engine, sheets_dir: Path, parent=None):
        super().__init__(parent)
        self.engine, self.sheets_dir = engine, Path(sheets_dir)
        self.task: Task | None = None
        self.run_data: dict | None = None
        self.sheet_zoom: float | None = None  # None: fit the width of the pane
        self.sheet_pixmap = QPixmap()

        self.attribute_list = QListWidget()
        self.attribute_list.setAccessibleName("Attributes to cluster on")
        self.set_attributes(DEFAULT_ATTRIBUTES)
        self.k_spin = QSpinBox()
        self.k_spin.setRange(1, 30)
        self.k_spin.setSpecialValueText("auto")  # 1 (the minimum) reads "auto": one cluster says nothing
        self.k_spin.setValue(1)
        self.run_button = QPushButton("Run clustering")
        self.run_button.setToolTip("Group the library's faces by the ticked attributes into k clusters")
        self.run_button.clicked.connect(lambda: self.run_clustering())
        self.runs_combo = QComboBox()
        self.runs_combo.activated.connect(lambda i: self.load(self.runs_combo.itemData(i)))
        form = QFormLayout()
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        form.addRow("k (clusters):", self.k_spin)
        left = QVBoxLayout()
        left.addWidget(QLabel("Attributes to cluster on:"))
        left.addWidget(self.attribute_list, 1)
        left.addLayout(form)
        left.addWidget(QLabel("Earlier runs:"))  # above its list: a run's date is never cut
        left.addWidget(self.runs_combo)
        left.addWidget(self.run_button)
        left_w = QWidget()
        left_w.setLayout(left)

        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.cluster_list = QListWidget()
        self.cluster_list.setAccessibleName("Clusters")
        self.cluster_list.setWordWrap(True)
        self.cluster_list.currentRowChanged.connect(self._show_cluster)
        self.cluster_list.itemActivated.connect(lambda _item: self.open_current())  # double-click or Enter
        self.open_button = QPushButton("Show the cluster's photos")
        self.open_button.setToolTip("Show the photos of the chosen cluster in the Photos grid (or double-click it)")
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
        self.sheet_scroll.setAccessibleName("Cluster sheet")
        self.sheet.setAccessibleName("Cluster sheet")
        self.sheet_scroll.setWidgetResizable(True)
        self.sheet_scroll.setWidget(self.sheet)
        self.sheet_scroll.viewport().installEventFilter(self)
        self.outdated = QLabel()
        self.outdated.setWordWrap(True)
        self.outdated.setStyleSheet("background: #fdebd0; color: black; padding: 4px; border-radius: 3px")
        self.rerun_button = QPushButton("Re-run with the same settings")
        self.rerun_button.clicked.connect(self.rerun)
        notice = QHBoxLayout()
        notice.addWidget(self.outdated, 1)
        notice.addWidget(self.rerun_button)
        self.notice = QWidget()
        self.notice.setLayout(notice)
        self.notice.hide()
        zoom = QHBoxLayout()
        zoom.addWidget(QLabel("Sheet:"))
        for text, tip, slot in (("Fit", "The whole sheet in the pane (follows the window)", lambda: self.zoom_sheet(None)),
                                ("−", "Zoom out (Ctrl+wheel)", lambda: self.zoom_sheet(0.8)),
                                ("+", "Zoom in (Ctrl+wheel)", lambda: self.zoom_sheet(1.25)),
                                ("Actual size", "One sheet pixel per screen pixel", lambda: self.zoom_sheet(1.0, absolute=True))):
            b = QPushButton(text)
            b.setToolTip(tip)
            b.setAccessibleName(f"Sheet: {tip.split(' (')[0].lower()}")  # not "minus sign"
            b.clicked.connect(slot)
            zoom.addWidget(b)
        self.zoom_label = QLabel()  # what the sheet is shown at now: "Fit · 72 %"
        zoom.addWidget(self.zoom_label)
        zoom.addStretch()
        right = QVBoxLayout()
        right.setContentsMargins(0, 0, 0, 0)
        right.addWidget(self.notice)
        right.addLayout(zoom)
        right.addWidget(self.sheet_scroll, 1)
        right_w = QWidget()
        right_w.setLayout(right)

        # the controls and the cluster list share one column, so the sheet gets most of the width
        # (legible at the default window size)
        column = QSplitter(Qt.Orientation.Vertical)
        column.addWidget(left_w)
        column.addWidget(middle_w)
        column.setSizes([380, 320])
        split = QSplitter()
        split.addWidget(column)
        split.addWidget(right_w)
        split.setStretchFactor(1, 1)
        split.setSizes([250, 1030])
        layout = QHBoxLayout(self)
        layout.addWidget(split)
        self.refresh_runs()

    def set_attributes(self, attributes: list[str], unreliable: dict[str, str] | None = None) -> None:
        """Offer the active model's attributes only (rebuilt when another model is installed),
        keeping the ticks; unreliable ones are greyed with their reason."""
        ticked = set(self.chosen_attributes()) if self.attribute_list.count() else set(CLUSTER_ATTRIBUTES)
        self.attribute_list.clear()
        for a in attributes:
            item = QListWidgetItem(label(a))
            item.setData(AttrRole, a)
            item.setCheckState(Qt.CheckState.Checked if a in ticked else Qt.CheckState.Unchecked)
            if a in (unreliable or {}):
                item.setForeground(QColor("#8a8a8a"))
                item.setToolTip(f"{label(a)}: {unreliable[a]} (greyed; still usable)")
            self.attribute_list.addItem(item)
        # every name whole: the list is as wide as its longest entry, no horizontal scrollbar
        self.attribute_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.attribute_list.setMinimumWidth(self.attribute_list.sizeHintForColumn(0) + 2 * self.attribute_list.frameWidth()
                                            + self.attribute_list.verticalScrollBar().sizeHint().width() + 4)

    def chosen_attributes(self) -> list[str]:
        items = (self.attribute_list.item(i) for i in range(self.attribute_list.count()))
        return [it.data(AttrRole) for it in items if it.checkState() == Qt.CheckState.Checked]

    def set_engine(self, engine, sheets_dir: Path) -> None:
        """Another library: its own runs and its own folder of sheets."""
        self.engine, self.sheets_dir = engine, Path(sheets_dir)
        self.refresh_runs()

    def refresh_runs(self) -> None:
        """List stored runs, newest first, and show the newest."""
        with Session(self.engine) as s:
            runs = s.execute(select(ClusterRun.id, ClusterRun.created_at, ClusterRun.k)
                             .order_by(ClusterRun.id.desc())).all()
        self.runs_combo.clear()
        for r in runs:
            self.runs_combo.addItem(f"#{r.id} · k={r.k} · {r.created_at:%d %b %H:%M}", r.id)
        self.runs_combo.setEnabled(bool(runs))
        if runs:
            self.load(runs[0].id)
        else:
            self._show({"clusters": []}, "No clustering yet. Choose the attributes and k, then "
                       "press Run clustering (the library needs scanned faces).")

    def rerun(self) -> None:
        """Cluster again with the shown run's attributes and k."""
        if self.run_data and self.run_data.get("attributes"):
            self.run_clustering(self.run_data["attributes"],
                                1 if self.run_data["params"].get("k_requested") == "auto" else self.run_data["k"])

    def run_clustering(self, attributes: list[str] | None = None, k: int | None = None) -> None:
        if self.task is not None:
            return
        from photo_sorter import clusters

        attributes = attributes or self.chosen_attributes()
        k = k or self.k_spin.value()
        engine, out_dir = self.engine, self.sheets_dir

        def work(progress, cancel):
            return clusters.run_clustering(engine, attributes, "auto" if k == 1 else k, 0, out_dir)

        self.task = Task(work, self)
        self.task.succeeded.connect(lambda result: self.refresh_runs())
        self.task.failed.connect(lambda msg: self.summary.setText(f"<b>Cannot cluster:</b> {msg}"))
        self.task.finished.connect(self._task_ended)
        self.run_button.setEnabled(False)
        self.run_button.setText("Clustering…")
        self.summary.setText("Clustering the library's faces… (with k on auto, several k are tried)")
        self.task.start()

    def _task_ended(self) -> None:
        self.task = None
        self.run_button.setEnabled(True)
        self.run_button.setText("Run clustering")

    def load(self, run_id: int) -> None:
        from photo_sorter import clusters

        data = clusters.load_run(self.engine, run_id, members=False)  # a cluster's when opened
        sil = (f", separation {data['silhouette']:.2f} of 1 (silhouette)"
               if data["silhouette"] is not None else "")
        auto = " (chosen automatically)" if data["params"].get("k_requested") == "auto" else ""
        n = data["params"].get("n_faces", sum(c["size"] for c in data["clusters"]))
        self._show(data, f"<b>Run #{data['run_id']}</b>: {data['k']} clusters{auto}{sil}, {n} faces, "
                   f"on {', '.join(label(a) for a in data['attributes'])}.")
        self.runs_combo.setCurrentIndex(max(0, self.runs_combo.findData(run_id)))
        self.check_outdated()

    def check_outdated(self) -> None:
        """Say so (and offer a re-run) when the shown run no longer describes the library."""
        why = run_outdated(self.engine, self.run_data) if self.run_data and self.run_data.get("run_id") else ""
        self.outdated.setText(f"<b>This run is older than the library:</b> {why}." if why else "")
        self.notice.setVisible(bool(why))

    def showEvent(self, event) -> None:
        """Scans and folder watching change the library while another tab is shown: look again."""
        super().showEvent(event)
        self.check_outdated()

    def _show(self, data: dict, summary: str) -> None:
        self.run_data = data
        self.summary.setText(summary)
        self.cluster_list.clear()
        for c in data["clusters"]:
            self.cluster_list.addItem(f"{c['index'] + 1}. {c['name']}\n{c['size']} face{'s' if c['size'] != 1 else ''}")
        # what the sheet's picture shows, for a screen reader
        self.sheet.setAccessibleDescription("; ".join(f"cluster {c['index'] + 1}, {c['name']}: {c['size']} faces"
                                                      for c in data["clusters"]) or "empty")
        self.open_button.setEnabled(bool(data["clusters"]))
        if data["clusters"]:
            self.cluster_list.setCurrentRow(0)
        else:
            self.sheet_pixmap = QPixmap()
            self._render_sheet()

    def _show_cluster(self, row: int) -> None:
        if not self.run_data or row < 0:
            return
        cluster = self.run_data["clusters"][row]
        self.sheet_pixmap = QPixmap(cluster["sheet"]) if cluster["sheet"] else QPixmap()
        self._render_sheet()

    def zoom_sheet(self, factor: float | None, absolute: bool = False) -> None:
        """None: fit the pane's width; otherwise scale by factor (or to it, absolute)."""
        if factor is None or self.sheet_pixmap.isNull():
            self.sheet_zoom = None
        else:
            current = self.sheet_zoom or self._fit_scale()
            self.sheet_zoom = min(4.0, max(0.1, factor if absolute else current * factor))
        self._render_sheet()

    def _fit_scale(self) -> float:
        """The whole sheet in the pane (never enlarged past its own pixels)."""
        viewport = self.sheet_scroll.viewport().size()
        return min(1.0, (viewport.width() - 8) / max(1, self.sheet_pixmap.width()),
                   (viewport.height() - 8) / max(1, self.sheet_pixmap.height()))

    def _render_sheet(self) -> None:
        if self.sheet_pixmap.isNull():
            self.zoom_label.clear()
            self.sheet.setPixmap(QPixmap())
            self.sheet.setText("No sheet for this cluster (its faces have no stored crops)."
                               if self.run_data and self.run_data["clusters"] else "")
            return
        scale = self.sheet_zoom or self._fit_scale()
        self.zoom_label.setText(f"{'Fit · ' if self.sheet_zoom is None else ''}{scale:.0%}")
        self.sheet.setPixmap(self.sheet_pixmap.scaledToWidth(
            max(1, round(self.sheet_pixmap.width() * scale)), Qt.TransformationMode.SmoothTransformation))

    def eventFilter(self, obj, event) -> bool:
        """The sheet follows the pane's size when fitted; Ctrl+wheel zooms it."""
        if obj is self.sheet_scroll.viewport():
            if event.type() == QEvent.Type.Resize and self.sheet_zoom is None:
                self._render_sheet()
            elif event.type() == QEvent.Type.Wheel and event.modifiers() & Qt.KeyboardModifier.ControlModifier:
                self.zoom_sheet(1.25 if event.angleDelta().y() > 0 else 0.8)
                return True
        return super().eventFilter(obj, event)

    def open_current(self) -> None:
        row = self.cluster_list.currentRow()
        if self.run_data and row >= 0:
            cluster = self.run_data["clusters"][row]
            from photo_sorter import clusters

            photo_ids = clusters.cluster_photo_ids(self.engine, cluster["id"])
            self.photosRequested.emit([{"id": i} for i in photo_ids],
                                      f"Cluster {cluster['index'] + 1}: {cluster['name']}")
