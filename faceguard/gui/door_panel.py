"""The door in the window: the lock state and alarms in the status bar, the door settings
dialog with its "Test door" button, and the signal bridge that carries the gate's notices
(from driver threads) into the GUI thread."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from faceguard.core.context import AppContext
from faceguard.core.door import DoorResult
from faceguard.core.door.monitor import DoorStatus
from faceguard.core.gate import Gate
from faceguard.errors import FaceGuardError
from faceguard.gui import theme
from faceguard.gui.tasks import Runner, Task
from faceguard.settings import DOOR_DRIVERS, LOCK_TYPES, SERIAL_PRESETS, Settings

ROLE = {"locked": "", "unlocked": "ok", "fault": "error", "alarm": "error"}  # stylesheet


class DoorStatusBridge(QObject):
    """Re-emits the gate's status (called on driver threads) as a Qt signal: connected to
    a GUI object's method it arrives queued, in the GUI thread."""

    changed = Signal(object)  # DoorStatus

    def watch(self, gate: Gate) -> None:
        """Follow this gate (the status now, then every change)."""
        gate.on_status(self.changed.emit)
        self.changed.emit(gate.status)


class DoorStatusLabel(QLabel):
    """``Door: locked`` / ``Door: unlocked`` / ``Door: ALARM - ...`` in the status bar."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Door: -", parent)
        self.setObjectName("doorState")
        self.state = ""

    def show_status(self, status: object) -> None:
        """Show a :class:`DoorStatus` (the slot of :attr:`DoorStatusBridge.changed`)."""
        assert isinstance(status, DoorStatus)
        self.state = status.state
        self.setText(status.text())
        self.setToolTip("; ".join(f"{a.time.astimezone():%H:%M:%S} {a.message}"
                                  for a in status.alarms) or status.text())
        theme.set_role(self, ROLE.get(status.state, "hint"))


def _combo(values: tuple[str, ...], current: str) -> QComboBox:
    box = QComboBox()
    for value in values:
        box.addItem(value)
    box.setCurrentIndex(max(0, box.findText(current)))
    return box


class DoorSettingsDialog(QDialog):
    """The ``door.*`` settings, "Test door" (in a worker: the window never waits) and Save
    (validated, audited, the gate switched to the new driver)."""

    test_timeout_s = 10.0  # how long "Test door" waits for a webhook or broker

    def __init__(self, ctx: AppContext, gate: Gate, runner: Runner,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Door")
        self.resize(620, 640)
        self.ctx, self.gate, self.runner = ctx, gate, runner
        self.saved: Settings | None = None
        self.last_test: DoorResult | None = None
        s = ctx.settings
        self.driver = _combo(DOOR_DRIVERS, s.door_driver)
        self.lock_type = _combo(LOCK_TYPES, s.door_lock_type)
        self.pulse = QDoubleSpinBox()
        self.pulse.setRange(0.1, 60.0)
        self.pulse.setSuffix(" s")
        self.pulse.setValue(s.door_pulse_s)
        self.held_open = QDoubleSpinBox()
        self.held_open.setRange(1.0, 3600.0)
        self.held_open.setSuffix(" s")
        self.held_open.setValue(s.door_held_open_s)
        lock_hint = QLabel("fail-secure (electric strike): stays locked without power and when "
                           "FaceGuard exits. fail-safe (maglock): unlocks without power, and "
                           "when FaceGuard exits.")
        lock_hint.setWordWrap(True)
        theme.set_role(lock_hint, "hint")
        common = QFormLayout()
        common.addRow("Driver", self.driver)
        common.addRow("Lock type", self.lock_type)
        common.addRow("", lock_hint)
        common.addRow("Unlock pulse", self.pulse)
        common.addRow("Held-open alarm after", self.held_open)

        self.serial_port = QLineEdit(s.door_serial_port)
        self.serial_preset = _combo(SERIAL_PRESETS, s.door_serial_preset)
        self.serial_on = QLineEdit(s.door_serial_on)
        self.serial_off = QLineEdit(s.door_serial_off)
        self.serial_input_open = QLineEdit(s.door_serial_input_open)
        self.serial_input_closed = QLineEdit(s.door_serial_input_closed)
        self.serial_input_exit = QLineEdit(s.door_serial_input_exit)
        serial = QFormLayout()
        serial.addRow("Port", self.serial_port)
        serial.addRow("Board", self.serial_preset)
        serial.addRow("On bytes (custom)", self.serial_on)
        serial.addRow("Off bytes (custom)", self.serial_off)
        serial.addRow("Input: door opened", self.serial_input_open)
        serial.addRow("Input: door closed", self.serial_input_closed)
        serial.addRow("Input: exit button", self.serial_input_exit)
        inputs_hint = QLabel("Inputs: the bytes (hex) a board with inputs sends; empty: none. "
                             "The door opening without an unlock raises 'forced open', staying "
                             "open too long 'held open'; the exit button unlocks.")
        inputs_hint.setWordWrap(True)
        theme.set_role(inputs_hint, "hint")
        serial.addRow("", inputs_hint)

        self.webhook_url = QLineEdit(s.door_webhook_url)
        self.webhook_secret = QLineEdit(s.door_webhook_secret)
        self.webhook_secret.setEchoMode(QLineEdit.EchoMode.Password)
        webhook = QFormLayout()
        webhook.addRow("URL", self.webhook_url)
        webhook.addRow("Shared secret", self.webhook_secret)

        self.mqtt_host = QLineEdit(s.door_mqtt_host)
        self.mqtt_port = QSpinBox()
        self.mqtt_port.setRange(1, 65535)
        self.mqtt_port.setValue(s.door_mqtt_port)
        self.mqtt_user = QLineEdit(s.door_mqtt_user)
        self.mqtt_password = QLineEdit(s.door_mqtt_password)
        self.mqtt_password.setEchoMode(QLineEdit.EchoMode.Password)
        self.mqtt_tls = _combo(("off", "on"), s.door_mqtt_tls)
        self.mqtt_remote_unlock = _combo(("off", "on"), s.door_mqtt_remote_unlock)
        self.mqtt_remote_unlock.setToolTip("on: Home Assistant's lock can open the door "
                                           "(audited)")
        mqtt = QFormLayout()
        mqtt.addRow("Broker", self.mqtt_host)
        mqtt.addRow("Port", self.mqtt_port)
        mqtt.addRow("User", self.mqtt_user)
        mqtt.addRow("Password", self.mqtt_password)
        mqtt.addRow("TLS", self.mqtt_tls)
        mqtt.addRow("Home Assistant may unlock", self.mqtt_remote_unlock)

        self.gpio_chip = QLineEdit(s.door_gpio_chip)
        self.gpio_line = QSpinBox()
        self.gpio_line.setRange(0, 4095)
        self.gpio_line.setValue(s.door_gpio_line)
        self.gpio_contact = QSpinBox()
        self.gpio_exit = QSpinBox()
        for spin, value in ((self.gpio_contact, s.door_gpio_contact_line),
                            (self.gpio_exit, s.door_gpio_exit_line)):
            spin.setRange(-1, 4095)
            spin.setSpecialValueText("none")
            spin.setValue(value)
        gpio = QFormLayout()
        gpio.addRow("Chip", self.gpio_chip)
        gpio.addRow("Relay line", self.gpio_line)
        gpio.addRow("Door contact line", self.gpio_contact)
        gpio.addRow("Exit button line", self.gpio_exit)

        self.sections: dict[str, QGroupBox] = {}
        layout = QVBoxLayout(self)
        layout.addLayout(common)
        for key, title, form in (("serial", "USB / serial relay board", serial),
                                 ("webhook", "HTTP webhook", webhook),
                                 ("mqtt", "MQTT broker", mqtt), ("gpio", "GPIO", gpio)):
            box = QGroupBox(title)
            box.setLayout(form)
            self.sections[key] = box
            layout.addWidget(box)
        layout.addStretch(1)
        self.driver.currentTextChanged.connect(self._show_section)
        self._show_section(self.driver.currentText())

        self.test_button = QPushButton("Test door")
        self.test_button.setToolTip("One unlock pulse with the settings above (not saved)")
        self.test_button.clicked.connect(self.test_door)
        self.outcome = QLabel(" ")
        self.outcome.setWordWrap(True)
        layout.addWidget(self.test_button)
        layout.addWidget(self.outcome)
        buttons = theme.accept_cancel(self, self.save)
        layout.addWidget(buttons)

    def _show_section(self, driver: str) -> None:
        for key, box in self.sections.items():
            box.setVisible(key == driver)

    def edited(self) -> Settings:
        """The settings as edited (SettingsError with the reason when a value is bad)."""
        return self.ctx.settings.replace(
            door_driver=self.driver.currentText(), door_lock_type=self.lock_type.currentText(),
            door_pulse_s=round(float(self.pulse.value()), 2),
            door_held_open_s=round(float(self.held_open.value()), 1),
            door_serial_port=self.serial_port.text().strip(),
            door_serial_preset=self.serial_preset.currentText(),
            door_serial_on=self.serial_on.text().strip(),
            door_serial_off=self.serial_off.text().strip(),
            door_serial_input_open=self.serial_input_open.text().strip(),
            door_serial_input_closed=self.serial_input_closed.text().strip(),
            door_serial_input_exit=self.serial_input_exit.text().strip(),
            door_webhook_url=self.webhook_url.text().strip(),
            door_webhook_secret=self.webhook_secret.text(),
            door_mqtt_host=self.mqtt_host.text().strip(), door_mqtt_port=self.mqtt_port.value(),
            door_mqtt_user=self.mqtt_user.text().strip(),
            door_mqtt_password=self.mqtt_password.text(),
            door_mqtt_tls=self.mqtt_tls.currentText(),
            door_mqtt_remote_unlock=self.mqtt_remote_unlock.currentText(),
            door_gpio_chip=self.gpio_chip.text().strip(), door_gpio_line=self.gpio_line.value(),
            door_gpio_contact_line=self.gpio_contact.value(),
            door_gpio_exit_line=self.gpio_exit.value())

    def _say(self, text: str, role: str) -> None:
        self.outcome.setText(text)
        theme.set_role(self.outcome, role)

    def test_door(self) -> None:
        """Pulse the door with the edited settings, in a worker (results by signal)."""
        try:
            settings = self.edited()
        except FaceGuardError as error:
            self._say(str(error), "error")
            return
        gate = self.gate
        timeout = self.test_timeout_s
        task = Task(lambda _task: gate.test(settings, timeout_s=timeout))
        task.on_done(self._tested)
        task.failed.connect(self._test_failed)
        self.test_button.setEnabled(False)
        self._say("Testing the door…", "hint")
        self.runner.start(task)

    def _tested(self, result: object) -> None:
        assert isinstance(result, DoorResult)
        self.last_test = result
        self.test_button.setEnabled(True)
        if result.done:
            self._say(f"Door test done: {result.message or 'pulsed'}.", "ok")
        else:
            self._say(f"The door test did not complete: {result.message}", "error")

    def _test_failed(self, message: str) -> None:
        self.test_button.setEnabled(True)
        self._say(f"The door test failed: {message}", "error")

    def save(self) -> None:
        """Validate, start the new driver, write settings.json, audit the change."""
        old = self.ctx.settings
        try:
            new = self.edited()
            self.gate.reconfigure(new)  # DoorError: the old driver is kept, nothing saved
        except FaceGuardError as error:
            self._say(str(error), "error")
            return
        try:
            self.ctx.apply_settings(new, actor=self.ctx.actor)
        except FaceGuardError as error:
            self.gate.reconfigure(old)
            self._say(str(error), "error")
            return
        self.saved = new
        self.accept()
