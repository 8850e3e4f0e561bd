"""The settings dialog: video source, match threshold, repeat window, liveness, kiosk name,
data folder."""

from __future__ import annotations

from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from faceguard.core.context import AppContext
from faceguard.core.operating_point import one_in
from faceguard.errors import FaceGuardError
from faceguard.gui import theme
from faceguard.kiosk.sources import SourceError, SourceSpec
from faceguard.settings import Settings
from faceguard.settings.schema import STRICTNESS_FAR

CUSTOM = "custom"
STRICTNESS_NAMES = {"standard": "Standard", "strict": "Strict", "very-strict": "Very strict"}
THRESHOLD_NOTE = (
    "The levels are the model's calibration (on UTKFace faces): how many enrolled people a "
    "stranger's face outscores. "
    "The threshold is how similar a face must be to an enrolled person to count as them. "
    "Higher: fewer strangers are ever taken for someone enrolled, but enrolled people are "
    "turned away more often (poor light, new glasses). Lower: people get in more easily, and a "
    "look-alike is more likely to be let in as someone else.")

LIVENESS_MODES = (("Off", "off"), ("Observe (score logged and shown, never blocks)", "observe"),
                  ("Enforce (a photo or screen held up is refused)", "enforce"))
LIVENESS_NOTE = ("Higher: photos and screens held up are refused more often, but real people "
                 "are asked to look at the camera more often too. Lower: the reverse.")


class SettingsDialog(QDialog):
    """Edit the kiosk's settings; :meth:`save` validates, writes and audits them."""

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.resize(620, 480)
        self.ctx = ctx
        self.saved: Settings | None = None
        settings = ctx.settings

        self.source = QLineEdit(settings.source)
        self.source.setToolTip("A camera number (0), a video file, an rtsp:// or http:// "
                               "stream, a folder of images, or demo")
        browse_file = QPushButton("File…")
        browse_folder = QPushButton("Folder…")
        browse_file.clicked.connect(self._browse_file)
        browse_folder.clicked.connect(self._browse_folder)
        source_row = QHBoxLayout()
        source_row.addWidget(self.source, 1)
        source_row.addWidget(browse_file)
        source_row.addWidget(browse_folder)
        source_hint = QLabel("Camera number (0, 1…), video file, rtsp:// or http:// stream "
                             "URL, folder of images, or demo.")
        theme.set_role(source_hint, "hint")

        calibration_problem = " "
        try:
            calibrated = ctx.calibrated_thresholds()
        except FaceGuardError as error:  # a damaged model manifest: said below the form
            calibrated, calibration_problem = {}, str(error)
        self.calibrated = calibrated
        # One entry per strictness level (those the model was never calibrated for greyed
        # out), then a custom threshold typed in the box below.
        self.strictness = QComboBox()
        model = self.strictness.model()
        items = model if isinstance(model, QStandardItemModel) else None
        for level, far in STRICTNESS_FAR.items():
            threshold = calibrated.get(level)
            text = f"{STRICTNESS_NAMES[level]}: a stranger matches about {one_in(far)} people"
            self.strictness.addItem(text + (f" (threshold {threshold:.3f})" if threshold
                                            is not None else " (not calibrated)"), level)
            item = items.item(self.strictness.count() - 1) if items is not None else None
            if threshold is None and item is not None:
                item.setEnabled(False)
        self.strictness.addItem("Custom threshold", CUSTOM)
        self.threshold = QDoubleSpinBox()
        self.threshold.setRange(0.0, 1.0)
        self.threshold.setDecimals(3)
        self.threshold.setSingleStep(0.01)
        current = settings.match_threshold
        self.threshold.setValue(current if current is not None else
                                calibrated.get(settings.match_strictness, 0.5))
        self.strictness.setCurrentIndex(self.strictness.findData(
            CUSTOM if current is not None else settings.match_strictness))
        self.threshold.setEnabled(current is not None)
        self.strictness.currentIndexChanged.connect(self._strictness_changed)
        note = QLabel(THRESHOLD_NOTE)
        note.setWordWrap(True)
        theme.set_role(note, "hint")

        self.repeat = QSpinBox()
        self.repeat.setRange(0, 86_400)
        self.repeat.setSingleStep(30)
        self.repeat.setSuffix(" s")
        self.repeat.setValue(settings.repeat_window_s)
        repeat_hint = QLabel("A person seen again within this time is not logged twice.")
        theme.set_role(repeat_hint, "hint")

        self.liveness_mode = QComboBox()
        for text, value in LIVENESS_MODES:
            self.liveness_mode.addItem(text, value)
        self.liveness_mode.setCurrentIndex(
            max(0, self.liveness_mode.findData(settings.liveness_mode)))
        self.liveness_threshold = QDoubleSpinBox()
        self.liveness_threshold.setRange(0.0, 1.0)
        self.liveness_threshold.setDecimals(2)
        self.liveness_threshold.setSingleStep(0.05)
        self.liveness_threshold.setValue(settings.liveness_threshold)
        liveness_note = QLabel(LIVENESS_NOTE)
        liveness_note.setWordWrap(True)
        theme.set_role(liveness_note, "hint")

        self.kiosk_name = QLineEdit(settings.kiosk_name)
        self.data_folder = QLineEdit(str(ctx.data_dir))
        self.data_folder.setReadOnly(True)
        folder_hint = QLabel("To use another data folder, start FaceGuard with --data-dir "
                             "FOLDER (or set FACEGUARD_DATA_DIR).")
        folder_hint.setWordWrap(True)
        theme.set_role(folder_hint, "hint")

        form = QFormLayout()
        form.addRow("Video source", source_row)
        form.addRow("", source_hint)
        form.addRow("Strictness", self.strictness)
        form.addRow("Match threshold", self.threshold)
        form.addRow("", note)
        form.addRow("Repeat window", self.repeat)
        form.addRow("", repeat_hint)
        form.addRow("Liveness", self.liveness_mode)
        form.addRow("Liveness threshold", self.liveness_threshold)
        form.addRow("", liveness_note)
        form.addRow("Kiosk name", self.kiosk_name)
        form.addRow("Data folder", self.data_folder)
        form.addRow("", folder_hint)
        self.message = QLabel(calibration_problem)
        theme.set_role(self.message, "error")
        buttons = theme.accept_cancel(self, self.save)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.message)
        layout.addWidget(buttons)

    def _strictness_changed(self) -> None:
        """A calibrated level shows its threshold; only a custom one can be typed."""
        level = self.strictness.currentData()
        self.threshold.setEnabled(level == CUSTOM)
        if level in self.calibrated:
            self.threshold.setValue(self.calibrated[level])

    def _browse_file(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "Video file", "",
                                              "Videos (*.mp4 *.avi *.mkv *.mov *.webm);;All (*)")
        if name:
            self.source.setText(name)

    def _browse_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of images")
        if folder:
            self.source.setText(folder)

    def edited(self) -> Settings:
        """The settings as edited (SettingsError/SourceError when a value is not valid)."""
        SourceSpec.parse(self.source.text())
        level = str(self.strictness.currentData())
        custom = level == CUSTOM
        return self.ctx.settings.replace(source=self.source.text().strip(),
                                         match_threshold=(float(self.threshold.value())
                                                          if custom else None),
                                         match_strictness=(self.ctx.settings.match_strictness
                                                           if custom else level),
                                         repeat_window_s=int(self.repeat.value()),
                                         kiosk_name=self.kiosk_name.text().strip(),
                                         liveness_mode=str(self.liveness_mode.currentData()),
                                         liveness_threshold=round(
                                             float(self.liveness_threshold.value()), 2))

    def save(self) -> None:
        """Validate, then let the application apply them (saved, audited, the matcher's
        operating point recomputed); an invalid value is shown and nothing changes."""
        try:
            new = self.edited()
            self.ctx.apply_settings(new, actor=self.ctx.actor)
        except (FaceGuardError, SourceError) as error:
            self.message.setText(str(error))
            return
        self.saved = new
        self.accept()
