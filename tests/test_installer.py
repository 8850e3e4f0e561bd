"""The installer agrees with itself and with the source tree.

Fast checks (always run): the PyInstaller spec (executed with stand-ins for PyInstaller, on
each platform's branch) ships every resource that must ship; the Linux desktop entry is valid
and the Linux install script works on a stand-in bundle; the Inno Setup script names the same
app, version, programs and icon; the icons are complete and current.
The slow check (`make dist-check`) builds the Linux bundle in a clean virtual environment and
runs the frozen program's `--self-test`.
"""

from __future__ import annotations

import configparser
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import build_test_embedder

REPO = Path(__file__).resolve().parents[1]
INSTALLER = REPO / "installer"
RESOURCES = REPO / "resources"
SPEC = INSTALLER / "faceguard.spec"
DESKTOP = INSTALLER / "linux" / "faceguard.desktop"
INSTALL_SH = INSTALLER / "linux" / "install.sh"
ISS = INSTALLER / "windows" / "faceguard.iss"


@pytest.fixture(scope="module")
def cfg() -> Iterator[types.ModuleType]:
    """installer/bundle_config.py, imported the way the spec imports it."""
    sys.path.insert(0, str(INSTALLER))
    try:
        yield importlib.import_module("bundle_config")
    finally:
        sys.path.remove(str(INSTALLER))


@pytest.fixture(scope="module")
def icons() -> Iterator[types.ModuleType]:
    """installer/make_icon.py."""
    sys.path.insert(0, str(INSTALLER))
    try:
        yield importlib.import_module("make_icon")
    finally:
        sys.path.remove(str(INSTALLER))


def project() -> dict[str, Any]:
    with (REPO / "pyproject.toml").open("rb") as handle:
        return dict(tomllib.load(handle)["project"])


# -- the spec -----------------------------------------------------------------------------------

class SpecRun:
    """What the spec asked PyInstaller for, recorded by stand-ins."""

    def __init__(self) -> None:
        self.analysis: dict[str, Any] = {}
        self.scripts: list[str] = []
        self.exes: list[dict[str, Any]] = []
        self.collect: dict[str, Any] = {}
        self.bundle: dict[str, Any] | None = None


def run_spec(platform: str, monkeypatch: pytest.MonkeyPatch,
             pure: tuple[str, ...] = ("faceguard.cli",)) -> SpecRun:
    """Execute installer/faceguard.spec as PyInstaller would, on ``platform``'s branch."""
    run = SpecRun()

    class Analysis:
        def __init__(self, scripts: list[str], **kwargs: Any) -> None:
            run.scripts = scripts
            run.analysis = kwargs
            self.pure = [(name, f"{name}.py", "PYMODULE") for name in pure]
            self.scripts = [("faceguard_entry", scripts[0], "PYSOURCE")]
            self.binaries = [(Path(dest, Path(src).name).as_posix(), src, "BINARY")
                             for src, dest in kwargs["binaries"]]
            self.binaries.append(("PySide6/Qt/plugins/platformthemes/libqgtk3.so",
                                  "/site/libqgtk3.so", "BINARY"))
            self.datas = list(kwargs["datas"])

    def pyz(*args: Any, **kwargs: Any) -> str:
        return "pyz"

    def exe(*args: Any, **kwargs: Any) -> dict[str, Any]:
        run.exes.append(kwargs)
        return kwargs

    def collect(*args: Any, **kwargs: Any) -> dict[str, Any]:
        run.collect = {"programs": [a for a in args if isinstance(a, dict)],
                       "tocs": [a for a in args if isinstance(a, list)], **kwargs}
        return run.collect

    def bundle(*args: Any, **kwargs: Any) -> None:
        run.bundle = kwargs

    hooks = types.ModuleType("PyInstaller.utils.hooks")
    hooks.collect_dynamic_libs = lambda package: [  # type: ignore[attr-defined]
        (f"/site/{package}/capi/lib{package}.so", f"{package}/capi")]
    monkeypatch.setitem(sys.modules, "PyInstaller", types.ModuleType("PyInstaller"))
    monkeypatch.setitem(sys.modules, "PyInstaller.utils", types.ModuleType("PyInstaller.utils"))
    monkeypatch.setitem(sys.modules, "PyInstaller.utils.hooks", hooks)
    monkeypatch.setattr(sys, "platform", platform)
    monkeypatch.setenv("FACEGUARD_RELEASE", "0")
    monkeypatch.syspath_prepend(str(INSTALLER))
    namespace = {"Analysis": Analysis, "PYZ": pyz, "EXE": exe, "COLLECT": collect,
                 "BUNDLE": bundle, "SPECPATH": str(INSTALLER), "__name__": "__main__"}
    exec(compile(SPEC.read_text(encoding="utf-8"), str(SPEC), "exec"), namespace)
    return run


def resource_files() -> set[str]:
    """Every file under resources/ (relative), ignoring hidden and cache files."""
    return {p.relative_to(RESOURCES).as_posix() for p in RESOURCES.rglob("*")
            if p.is_file() and not p.name.startswith(".") and "__pycache__" not in p.parts
            and p.suffix != ".pyc"}


def test_spec_ships_every_resource_that_must_ship(cfg: types.ModuleType,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    run = run_spec("linux", monkeypatch)
    datas = run.analysis["datas"]
    shipped = {f"{dest.removeprefix('resources/')}/{Path(src).name}" for src, dest in datas}
    for src, dest in datas:
        source = Path(src)
        assert source.is_file() and source.is_relative_to(RESOURCES)
        # In the bundle each file keeps its place under resources/ (paths.resources_dir()).
        assert dest == source.parent.relative_to(REPO).as_posix()
    plan = cfg.resource_plan(REPO)
    unaccounted = resource_files() - shipped - set(plan.skipped)
    assert not unaccounted, f"neither shipped nor deliberately left out: {unaccounted}"
    for name in cfg.REQUIRED_RESOURCES:
        assert name in shipped
    manifest = json.loads((RESOURCES / "models" / "manifest.json").read_text())["models"]
    for model, entry in manifest.items():
        assert f"models/{model}" in shipped
        card = RESOURCES / "models" / entry["card"]
        assert f"models/{entry['card']}" in shipped or (
            not card.is_file() and any(entry["card"] in w for w in plan.warnings))
    for folder in ("styles", "icons", "demo"):
        on_disk = {name for name in resource_files() if name.startswith(folder + "/")}
        assert on_disk <= shipped, f"resources/{folder} must ship whole"
    for skipped, reason in plan.skipped.items():
        assert skipped.startswith("models/") and reason


def test_spec_program_and_modules(cfg: types.ModuleType,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    run = run_spec("linux", monkeypatch)
    assert run.scripts == [str(REPO / cfg.ENTRY_SCRIPT)]
    assert Path(run.scripts[0]).is_file()
    assert run.analysis["pathex"] == [str(REPO)]
    hidden = set(run.analysis["hiddenimports"])
    assert {"faceguard.kiosk.cli", "faceguard.evaluation.cli", "faceguard.selftest",
            "faceguard.launcher", "faceguard.core.context"} <= hidden
    assert not any(name.startswith("faceguard.training") for name in hidden)
    excludes = set(run.analysis["excludes"])
    assert {"torch", "dlib", "faceguard.training", "pytest", "tests"} <= excludes
    # onnxruntime's native libraries are requested explicitly, not left to a hook.
    assert ("/site/onnxruntime/capi/libonnxruntime.so", "onnxruntime/capi") \
        in run.analysis["binaries"]
    assert [exe["name"] for exe in run.exes] == [cfg.EXECUTABLE]
    assert run.exes[0]["console"] is True and run.exes[0]["upx"] is False
    collected = {entry[0] for toc in run.collect["tocs"] for entry in toc}
    assert "onnxruntime/capi/libonnxruntime.so" in collected
    assert not any(name.endswith("libqgtk3.so") for name in collected)  # GTK theme left out
    assert run.collect["name"] == cfg.APP_NAME and run.bundle is None


def test_spec_refuses_excluded_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SystemExit, match="excluded modules"):
        run_spec("linux", monkeypatch, pure=("faceguard.cli", "torch.nn"))


def test_spec_windows_branch(cfg: types.ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    run = run_spec("win32", monkeypatch)
    by_name = {exe["name"]: exe for exe in run.exes}
    assert set(by_name) == {cfg.EXECUTABLE, cfg.CLI_EXECUTABLE}
    assert by_name[cfg.EXECUTABLE]["console"] is False  # no console window behind the kiosk
    assert by_name[cfg.CLI_EXECUTABLE]["console"] is True  # --self-test prints
    for exe in run.exes:
        assert exe["icon"].endswith(".ico") and Path(exe["icon"]).is_file()
    assert len(run.collect["programs"]) == 2 and run.bundle is None


def test_spec_macos_branch(cfg: types.ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    run = run_spec("darwin", monkeypatch)
    assert run.bundle is not None
    assert run.bundle["name"] == f"{cfg.APP_NAME}.app"
    assert run.bundle["icon"].endswith(".icns") and Path(run.bundle["icon"]).is_file()
    assert run.bundle["version"] == project()["version"]
    plist = run.bundle["info_plist"]
    assert plist["CFBundleShortVersionString"] == project()["version"]
    assert "camera" in plist["NSCameraUsageDescription"]  # macOS kills camera use without it
    assert [exe["name"] for exe in run.exes] == [cfg.EXECUTABLE]


def test_resource_plan_rules(cfg: types.ModuleType, tmp_path: Path) -> None:
    root = tmp_path / "tree"
    shutil.copytree(RESOURCES, root / "resources",
                    ignore=shutil.ignore_patterns(cfg.PRODUCT_EMBEDDER))
    models = root / "resources" / "models"
    manifest = json.loads((models / "manifest.json").read_text())
    manifest["models"].pop(cfg.PRODUCT_EMBEDDER, None)
    (models / "manifest.json").write_text(json.dumps(manifest))
    (models / "half_trained.onnx").write_bytes(b"not listed")
    (models / "checkpoint.pt").write_bytes(b"not a model")
    (root / "resources" / "scratch").mkdir()
    (root / "resources" / "scratch" / "notes.txt").write_text("x")
    plan = cfg.resource_plan(root)
    assert "models/half_trained.onnx" in plan.skipped
    assert "models/checkpoint.pt" in plan.skipped
    assert "scratch/notes.txt" in plan.skipped
    assert not any("half_trained" in src for src, _ in plan.datas)
    assert any(cfg.PRODUCT_EMBEDDER in warning for warning in plan.warnings)
    with pytest.raises(cfg.BundleError, match="product embedder"):
        cfg.resource_plan(root, release=True)
    manifest["models"]["mtcnn_pnet.onnx"]["card"] = "NO_SUCH_CARD.md"
    (models / "manifest.json").write_text(json.dumps(manifest))
    assert any("NO_SUCH_CARD.md" in warning for warning in cfg.resource_plan(root).warnings)
    manifest["models"]["mtcnn_pnet.onnx"]["card"] = "MTCNN_MODEL_CARD.md"
    manifest["models"]["ghost.onnx"] = {"sha256": "0" * 64}
    (models / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(cfg.BundleError, match=r"ghost\.onnx"):
        cfg.resource_plan(root)
    (root / "resources" / "demo" / "astronaut.png").unlink()
    manifest["models"].pop("ghost.onnx")
    (models / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(cfg.BundleError, match=r"demo/astronaut\.png"):
        cfg.resource_plan(root)


def test_names_and_versions_agree(cfg: types.ModuleType) -> None:
    import faceguard
    from faceguard.paths import APP_NAME
    from faceguard.settings import DEFAULT_MODEL_FILE

    assert cfg.version(REPO) == project()["version"] == faceguard.__version__
    assert cfg.APP_NAME == APP_NAME == cfg.EXECUTABLE
    assert cfg.APP_NAME.lower() == project()["name"]
    assert cfg.PRODUCT_EMBEDDER == DEFAULT_MODEL_FILE
    assert project()["scripts"]["faceguard"] == "faceguard.launcher:main"


def test_build_requirements_are_the_runtime_dependencies(cfg: types.ModuleType) -> None:
    wanted = cfg.requirements(REPO)
    assert wanted[:len(project()["dependencies"])] == project()["dependencies"]
    assert any(item.startswith("pyinstaller>=") for item in wanted)
    assert not any(re.match(r"(torch|dlib|pytest|onnx)\b", item) for item in wanted
                   if not item.startswith("onnxruntime"))


def test_package_modules_leave_out_training(cfg: types.ModuleType) -> None:
    modules = cfg.package_modules(REPO)
    assert "faceguard.selftest" in modules and "faceguard.vision.engine" in modules
    assert not any(m.startswith("faceguard.training") for m in modules)
    assert cfg.excluded("torch.nn") and not cfg.excluded("torchlike")


def test_verify_bundle_reports_what_is_missing(cfg: types.ModuleType, tmp_path: Path) -> None:
    app = tmp_path / "FaceGuard"
    (app / "_internal" / "resources" / "demo").mkdir(parents=True)
    (app / "FaceGuard").write_text("#!/bin/sh\n")
    (app / "_internal" / "torch").mkdir()
    problems = "\n".join(cfg.verify_bundle(app, REPO, platform="linux"))
    assert "resource missing: resources/models/manifest.json" in problems
    assert "Qt xcb platform plugin missing" in problems
    assert "onnxruntime Python binding missing" in problems
    assert "must not ship torch/" in problems


# -- Linux desktop entry and install script ----------------------------------------------------

def parse_desktop(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read(path, encoding="utf-8")
    return parser


def check_desktop_file(path: Path) -> configparser.ConfigParser:
    """desktop-file-validate where it is installed; the essential keys in any case."""
    validator = shutil.which("desktop-file-validate")
    if validator:
        result = subprocess.run([validator, str(path)], capture_output=True, text=True,
                                check=False)
        assert result.returncode == 0 and not result.stdout.strip(), result.stdout
    text = path.read_text(encoding="utf-8")
    assert text.startswith("[Desktop Entry]\n")
    entry = parse_desktop(path)
    main = entry["Desktop Entry"]
    for key, value in (("Type", "Application"), ("Name", "FaceGuard"), ("Terminal", "false"),
                       ("Icon", "faceguard")):
        assert main.get(key) == value, key
    assert main["Exec"] and main["Categories"].endswith(";")
    for group in entry.sections():
        assert group == "Desktop Entry" or group.startswith("Desktop Action ")
    for action in filter(None, main.get("Actions", "").split(";")):
        assert entry[f"Desktop Action {action}"]["Exec"]
    return entry


def test_desktop_file_is_valid(cfg: types.ModuleType) -> None:
    entry = check_desktop_file(DESKTOP)["Desktop Entry"]
    assert entry["Exec"] == cfg.EXECUTABLE  # install.sh rewrites it to the absolute path
    assert entry["StartupWMClass"] == cfg.APP_NAME  # Qt's window class (applicationName)
    assert (RESOURCES / "icons" / f"{entry['Icon']}_256.png").is_file()


def fake_bundle(folder: Path) -> Path:
    """A stand-in for dist/FaceGuard: what install.sh needs to find, nothing more."""
    app = folder / "FaceGuard"
    (app / "_internal" / "resources").mkdir(parents=True)
    shutil.copytree(RESOURCES / "icons", app / "_internal" / "resources" / "icons")
    (app / "FaceGuard").write_text("#!/bin/sh\necho FaceGuard \"$@\"\n")
    (app / "FaceGuard").chmod(0o755)
    shutil.copy(DESKTOP, app / "faceguard.desktop")
    shutil.copy(INSTALL_SH, app / "install.sh")
    return app


@pytest.mark.skipif(sys.platform != "linux", reason="Linux install script")
def test_install_script_installs_and_uninstalls(tmp_path: Path) -> None:
    app = fake_bundle(tmp_path / "unpacked")
    home = tmp_path / "home"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
           "XDG_DATA_HOME": str(home / "data"), "XDG_CONFIG_HOME": str(home / "config")}

    def install(*args: str) -> str:
        result = subprocess.run(["bash", str(app / "install.sh"), "--user", *args], env=env,
                                capture_output=True, text=True, check=False, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    install("--autostart")
    target = home / ".local" / "opt" / "FaceGuard"
    assert (target / "FaceGuard").is_file() and (target / "_internal" / "resources").is_dir()
    link = home / ".local" / "bin" / "faceguard"
    assert link.is_symlink() and link.resolve() == (target / "FaceGuard").resolve()
    menu = home / "data" / "applications" / "faceguard.desktop"
    entry = check_desktop_file(menu)["Desktop Entry"]
    assert entry["Exec"] == f'"{target}/FaceGuard"'
    assert (home / "data" / "icons" / "hicolor" / "48x48" / "apps" / "faceguard.png").is_file()
    autostart = check_desktop_file(home / "config" / "autostart" / "faceguard.desktop")
    assert autostart["Desktop Entry"]["Exec"] == f'"{target}/FaceGuard" --kiosk'
    assert autostart["Desktop Entry"]["X-GNOME-Autostart-enabled"] == "true"

    data = home / "data" / "FaceGuard"
    data.mkdir(parents=True)
    (data / "faceguard.db").write_text("library")
    assert "data folder is kept" in install("--uninstall")
    assert not target.exists() and not menu.exists() and not link.is_symlink()
    assert not (home / "config" / "autostart" / "faceguard.desktop").exists()
    assert (data / "faceguard.db").is_file()
    install()
    assert "with its data folder" in install("--uninstall", "--remove-data")
    assert not data.exists()


def test_install_script_leaves_foreign_folders_alone(tmp_path: Path) -> None:
    if sys.platform != "linux":
        pytest.skip("Linux install script")
    app = fake_bundle(tmp_path / "unpacked")
    foreign = tmp_path / "precious"
    foreign.mkdir()
    (foreign / "file.txt").write_text("keep me")
    result = subprocess.run(["bash", str(app / "install.sh"), "--user", "--dest", str(foreign)],
                            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                                 "HOME": str(tmp_path / "home")},
                            capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 1 and "left alone" in result.stderr
    assert (foreign / "file.txt").read_text() == "keep me"


def test_shell_scripts_parse() -> None:
    scripts = [INSTALLER / "build_linux.sh", INSTALL_SH, INSTALLER / "macos" / "build_macos.sh"]
    for script in scripts:
        result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True,
                                check=False)
        assert result.returncode == 0, f"{script}: {result.stderr}"
    checker = shutil.which("shellcheck")
    if checker:
        result = subprocess.run([checker, "-S", "warning", *map(str, scripts)],
                                capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout


# -- Windows installer --------------------------------------------------------------------------

def iss_defines() -> dict[str, str]:
    return dict(re.findall(r'^#define\s+(\w+)\s+"([^"]*)"', ISS.read_text(encoding="utf-8"),
                           re.MULTILINE))


def test_inno_setup_script_matches_the_project(cfg: types.ModuleType) -> None:
    defines = iss_defines()
    assert defines["AppName"] == cfg.APP_NAME
    assert defines["AppVersion"] == project()["version"]
    assert defines["AppExeName"] == f"{cfg.EXECUTABLE}.exe"
    assert defines["CliExeName"] == f"{cfg.CLI_EXECUTABLE}.exe"
    # platformdirs.user_data_dir("FaceGuard", appauthor=False) on Windows (faceguard.paths).
    assert defines["DataFolder"] == r"{localappdata}\FaceGuard"
    here = ISS.parent

    def local(path: str) -> Path:
        return (here / path.replace("\\", "/")).resolve()

    icon = local(defines["IconFile"])
    assert icon == RESOURCES / "icons" / "faceguard.ico" and icon.is_file()
    assert local(defines["BundleDir"]) == REPO / "dist" / cfg.APP_NAME


def test_inno_setup_script_has_the_kiosk_features() -> None:
    text = ISS.read_text(encoding="utf-8")
    sections = set(re.findall(r"^\[(\w+)\]", text, re.MULTILINE))
    assert {"Setup", "Tasks", "Files", "Icons", "Run", "Code"} <= sections
    assert re.search(r'^Name: "\{autoprograms\}\\\{#AppName\}\\\{#AppName\}"', text, re.M)
    autostart = re.search(r'^Name: "\{autostartup\}.*$', text, re.M)
    assert autostart and "--kiosk" in autostart.group(0)
    assert "Tasks: autostart" in autostart.group(0)
    assert re.search(r'^Name: "autostart";', text, re.M)
    assert "{uninstallexe}" in text and "UninstallDisplayIcon" in text
    # The uninstaller asks (default: keep) and deletes the data folder only when told to.
    code = text[text.index("[Code]"):]
    assert "CurUninstallStepChanged" in code and "usPostUninstall" in code
    assert "MB_DEFBUTTON2" in code and "DelTree(DataDir" in code and "/REMOVEDATA" in code
    setup = text[text.index("[Setup]"):text.index("[Tasks]")]
    assert "PrivilegesRequired=lowest" in setup  # {localappdata} is the kiosk user's
    assert "{{" in setup.split("AppId=")[1].splitlines()[0]


# -- icons and visual identity ------------------------------------------------------------------

def test_icons_are_complete(icons: types.ModuleType) -> None:
    folder = RESOURCES / "icons"
    for size in icons.PNG_SIZES:
        image = icons.decode_png((folder / f"faceguard_{size}.png").read_bytes())
        assert image.shape == (size, size, 4)
        assert image[0, 0, 3] == 0 and image[size // 2, size // 2, 3] == 255
    ico = icons.read_ico((folder / "faceguard.ico").read_bytes())
    assert sorted(ico) == sorted(icons.ICO_SIZES)
    for size, data in ico.items():
        assert icons.decode_png(data).shape == (size, size, 4)
    icns = icons.read_icns((folder / "faceguard.icns").read_bytes())
    assert set(icns) == {kind for kind, _ in icons.ICNS_TYPES}
    for kind, size in icons.ICNS_TYPES:
        assert icons.decode_png(icns[kind]).shape == (size, size, 4)


def test_icons_are_current(icons: types.ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    assert icons.main(["--check"]) == 0, capsys.readouterr().out


def test_identity_follows_the_kiosk_stylesheet(icons: types.ModuleType,
                                               cfg: types.ModuleType) -> None:
    brand = json.loads((RESOURCES / "styles" / "brand.json").read_text())
    assert brand["name"] == brand["window_title"] == cfg.APP_NAME
    assert (RESOURCES / brand["icon"]).is_file()
    qss = RESOURCES / "styles" / "kiosk.qss"
    if qss.is_file():
        sheet = qss.read_text(encoding="utf-8").lower()
        for name, colour in brand["colours"].items():
            assert colour.lower() in sheet, f"{name} {colour} is not a kiosk.qss colour"
    # The icon's rim is the accent colour.
    image = icons.decode_png((RESOURCES / brand["icon"]).read_bytes())
    opaque = image[image[..., 3] == 255][:, :3].astype(int)
    accent = np.array(icons.hex_rgb(brand["colours"]["accent"]))
    assert (np.abs(opaque - accent).max(axis=1) <= 2).mean() > 0.3


# -- the real build (slow) ----------------------------------------------------------------------

def frozen_env(home: Path) -> dict[str, str]:
    """A bare environment, as on a kiosk PC without Python: no venv, no PYTHONPATH."""
    home.mkdir(parents=True, exist_ok=True)
    return {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8",
            "QT_QPA_PLATFORM": "offscreen"}


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="builds the Linux bundle")
def test_linux_bundle_builds_and_passes_self_test(cfg: types.ModuleType, tmp_path: Path) -> None:
    dist, work, venv = tmp_path / "dist", tmp_path / "work", tmp_path / "venv"
    log = tmp_path / "build.log"
    start = time.monotonic()
    with log.open("w") as handle:
        build = subprocess.run(
            ["bash", str(INSTALLER / "build_linux.sh"), "--venv", str(venv), "--dist", str(dist),
             "--work", str(work)], cwd=tmp_path, stdout=handle, stderr=subprocess.STDOUT,
            check=False, timeout=3600)
    output = log.read_text()
    assert build.returncode == 0, output[-6000:]
    print(f"build took {time.monotonic() - start:.0f} s")
    app = dist / "FaceGuard"
    assert cfg.verify_bundle(app, REPO) == []
    tarballs = list(dist.glob(f"FaceGuard-{cfg.version(REPO)}-linux-*.tar.gz"))
    assert len(tarballs) == 1
    listing = subprocess.run(["tar", "tzf", str(tarballs[0])], capture_output=True, text=True,
                             check=True).stdout.split()
    for name in ("FaceGuard/FaceGuard", "FaceGuard/faceguard.desktop", "FaceGuard/install.sh",
                 "FaceGuard/faceguard.png"):
        assert name in listing
    check_desktop_file(app / "faceguard.desktop")

    env = frozen_env(tmp_path / "home")
    product = RESOURCES / "models" / cfg.PRODUCT_EMBEDDER
    if not product.is_file():
        # Until the product model is trained, prove the bundle with the tiny test embedder.
        embedder = tmp_path / "test_embedder.onnx"
        env["FACEGUARD_EMBEDDER"] = str(embedder)
        env["FACEGUARD_EMBEDDER_SHA256"] = build_test_embedder(embedder)
    result = subprocess.run([str(app / "FaceGuard"), "--self-test", "--data-dir",
                             str(tmp_path / "data")], cwd=tmp_path, env=env,
                            capture_output=True, text=True, check=False, timeout=300)
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"resources in {app / '_internal' / 'resources'}" in result.stdout
    assert result.stdout.strip().endswith("self-test passed")

    # The kiosk window starts from the bundle (Qt finds its platform plugins) and keeps running.
    window = subprocess.Popen([str(app / "FaceGuard"), "--demo"], cwd=tmp_path, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        window.wait(timeout=20)
    except subprocess.TimeoutExpired:
        window.terminate()
        out, _ = window.communicate(timeout=30)
        assert "Could not load the Qt platform plugin" not in out
        assert "Traceback" not in out, out[-3000:]
    else:
        out = window.stdout.read() if window.stdout else ""
        pytest.fail(f"the kiosk window exited early ({window.returncode}): {out[-3000:]}")
