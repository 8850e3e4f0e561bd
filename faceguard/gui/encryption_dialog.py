"""Admin > Encryption…: whether the face data is encrypted, and turning it on (administrators).

The key-encryption key is kept in the operating system's keyring where there is one, or comes
from a passphrase typed twice (it is then asked for at every start, or read from
$FACEGUARD_PASSPHRASE). Without either the dialog says plainly what is lost. Enabling runs in
a worker with a progress bar (:class:`~faceguard.gui.tasks.Task`); stopped half-way, it
carries on the next time.
"""

from __future__ import annotations

from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QFormLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from faceguard.core.context import AppContext
from faceguard.gui import theme
from faceguard.gui.tasks import Runner, Task
from faceguard.library.crypto import passphrase_problem
from faceguard.library.encryption import EnableResult

UNPROTECTED = ("The face templates and face images are stored unencrypted: anyone who copies "
               "the data folder or a backup can read them.")


class EncryptionDialog(QDialog):
    """The encryption state, and an Enable button for a library not yet encrypted."""

    def __init__(self, ctx: AppContext, runner: Runner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Encryption of the face data")
        self.ctx = ctx
        self.runner = runner
        self.result_: EnableResult | None = None
        self.state = QLabel()
        self.state.setWordWrap(True)
        self.use_keyring = QCheckBox("Keep the key in this computer's keyring (no passphrase "
                                     "at start)")
        self.passphrase = QLineEdit(echoMode=QLineEdit.EchoMode.Password)
        self.repeat = QLineEdit(echoMode=QLineEdit.EchoMode.Password)
        self.use_keyring.toggled.connect(self._keyring_toggled)
        form = QFormLayout()
        form.addRow("", self.use_keyring)
        form.addRow("Passphrase", self.passphrase)
        form.addRow("Repeat", self.repeat)
        self.form = form
        self.progress = QProgressBar()
        self.progress.hide()
        self.status = QLabel(" ")
        self.status.setWordWrap(True)
        self.enable_button = QPushButton("Encrypt the face data")
        self.enable_button.setProperty("accent", True)
        self.enable_button.clicked.connect(self.enable)
        layout = QVBoxLayout(self)
        layout.addWidget(self.state)
        layout.addLayout(form)
        layout.addWidget(self.progress)
        layout.addLayout(theme.dialog_footer(self, self.status, self.enable_button))
        self.refresh()

    def _keyring_toggled(self, on: bool) -> None:
        self.passphrase.setEnabled(not on)
        self.repeat.setEnabled(not on)

    def refresh(self) -> None:
        """Show the state; offer enabling only when it is not on."""
        status = self.ctx.encryption_status()
        sealed, plain = status.counts.sealed, status.counts.plain
        if status.state == "on":
            how = "the keyring" if status.kek == "keyring" else "a passphrase"
            text = (f"Encrypted (AES-256-GCM), key protected by {how}: {sealed} face images "
                    "and templates sealed.")
        elif status.state == "encrypting":
            text = (f"Encryption was started and not finished ({sealed} sealed, {plain} still "
                    "plain): encrypt again to finish it.")
        else:
            text = UNPROTECTED
            if not status.keyring_available:
                text += (" This computer has no keyring: encrypting needs a passphrase, asked "
                         "for at every start.")
        self.state.setText(text)
        can_enable = status.state != "on"
        self.use_keyring.setEnabled(can_enable and status.keyring_available
                                    and status.kek is None)
        self.use_keyring.setChecked(status.kek == "keyring" or (status.kek is None and
                                                                status.keyring_available))
        for widget in (self.use_keyring, self.passphrase, self.repeat):
            self.form.setRowVisible(widget, can_enable)
        self.enable_button.setVisible(can_enable)

    def enable(self) -> None:
        """Check the passphrase (or keyring) and encrypt in a worker."""
        use_keyring = self.use_keyring.isChecked()
        passphrase: str | None = None
        if not use_keyring:
            passphrase = self.passphrase.text()
            problem = passphrase_problem(passphrase) if self.ctx.encryption_status().kek \
                is None else None
            if problem is None and self.ctx.encryption_status().kek is None and \
                    passphrase != self.repeat.text():
                problem = "the two entries differ"
            if problem:
                self.status.setText(f"{problem[0].upper()}{problem[1:]}.")
                theme.set_role(self.status, "error")
                return
        ctx, actor = self.ctx, self.ctx.actor
        task = Task(lambda t: ctx.enable_encryption(passphrase=passphrase,
                                                    use_keyring=use_keyring, actor=actor,
                                                    progress=t.report))
        task.progress.connect(self._progress)
        task.on_done(self._done)
        task.failed.connect(self._failed)
        self.enable_button.setEnabled(False)
        self.progress.show()
        self.status.setText("Encrypting…")
        self.runner.start(task)

    def _progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)

    def _done(self, result: object) -> None:
        assert isinstance(result, EnableResult)
        self.result_ = result
        self.progress.hide()
        self.enable_button.setEnabled(True)
        self.status.setText(f"Encrypted: {result.sealed} sealed in {result.seconds:.1f} s. "
                            "Backups made before now still hold the face data unencrypted.")
        theme.set_role(self.status, "ok")
        self.passphrase.clear()
        self.repeat.clear()
        self.refresh()

    def _failed(self, message: str) -> None:
        self.progress.hide()
        self.enable_button.setEnabled(True)
        self.status.setText(f"{message[0].upper()}{message[1:]}." if message else "Failed.")
        theme.set_role(self.status, "error")
        self.refresh()
