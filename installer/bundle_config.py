"""What goes into the frozen FaceGuard build, in one place (standard library only).

The PyInstaller spec (installer/faceguard.spec), the build scripts and tests/test_installer.py
all read this module, so the bundle, the installers and the checks cannot drift apart.

Command line (used by the build scripts):

    python installer/bundle_config.py requirements   # pip requirements of the build venv
    python installer/bundle_config.py version        # the version in pyproject.toml
    python installer/bundle_config.py verify DIR     # check a built one-folder bundle
"""

from __future__ import annotations

import json
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APP_NAME = "FaceGuard"  # window title, bundle folder, executable, installer name
EXECUTABLE = "FaceGuard"  # the program (windowed on Windows and macOS)
CLI_EXECUTABLE = "faceguard-cli"  # Windows only: console twin for --self-test and commands
BUNDLE_IDENTIFIER = "org.faceguard.kiosk"
ICON_STEM = "faceguard"
ENTRY_SCRIPT = "installer/faceguard_entry.py"
PRODUCT_EMBEDDER = "lite_mobilefacenet_96.onnx"  # = faceguard.settings.DEFAULT_MODEL_FILE
RESOURCE_FOLDERS = ("models", "styles", "icons", "demo")
# PyInstaller versions the spec is written for.
BUILD_REQUIREMENTS = ("pyinstaller>=6.10,<7", "pyinstaller-hooks-contrib>=2024.8")

# Files the program reads at run time; the build fails without them.
REQUIRED_RESOURCES = (
    "models/manifest.json",
    "models/NOTICE",
    "models/mtcnn_pnet.onnx",
    "models/mtcnn_rnet.onnx",
    "models/mtcnn_onet.onnx",
    "demo/astronaut.png",  # the self-test's photo and the demo's enrolled person
    "demo/grace_hopper.jpg",  # the demo's stranger
    "demo/ATTRIBUTION.md",
    "styles/kiosk.qss",
    "styles/brand.json",
    "icons/faceguard_256.png",
    "icons/faceguard.ico",  # Windows program and installer icon
    "icons/faceguard.icns",  # macOS app icon
)

# Never in the bundle: training and evaluation-teacher stacks, test code, unused GUI kits.
EXCLUDED_MODULES = (
    "faceguard.training",
    "torch", "torchvision", "torchaudio", "functorch",
    "dlib", "_dlib_pybind11", "face_recognition_models", "facenet_pytorch",
    "onnx", "onnxruntime.quantization", "onnxruntime.transformers", "onnxruntime.tools",
    "tests", "pytest", "_pytest", "pytestqt", "mypy", "ruff", "importlinter",
    "tkinter", "matplotlib", "IPython", "PIL", "tqdm", "sympy", "networkx", "jinja2",
)

# Imported by name at run time (faceguard.cli registers these through __import__), so
# PyInstaller's import scanner cannot see them.
HIDDEN_IMPORTS = ("faceguard.kiosk.cli", "faceguard.evaluation.cli", "faceguard.selftest",
                  "faceguard.gui.app", "faceguard.core.library_cli")

# What a working bundle must contain besides the resources (glob patterns, relative to the
# contents folder): the native libraries that frozen builds most often lose.
NATIVE_CHECKS = {
    "linux": {
        "onnxruntime Python binding": "onnxruntime/capi/onnxruntime_pybind11_state*.so",
        "onnxruntime shared providers": "onnxruntime/capi/libonnxruntime_providers_shared.so",
        "OpenCV extension": "cv2/**/cv2*.so",
        "Qt xcb platform plugin": "PySide6/Qt/plugins/platforms/libqxcb.so",
        "Qt offscreen platform plugin": "PySide6/Qt/plugins/platforms/libqoffscreen.so",
        "Qt Widgets library": "PySide6/Qt/lib/libQt6Widgets.so.6",
        "SQLite module": "**/lib-dynload/_sqlite3*.so",
    },
    "win32": {
        "onnxruntime Python binding": "onnxruntime/capi/onnxruntime_pybind11_state*.pyd",
        "onnxruntime library": "onnxruntime/capi/onnxruntime*.dll",
        "OpenCV extension": "cv2/**/cv2*.pyd",
        "Qt windows platform plugin": "PySide6/plugins/platforms/qwindows.dll",
        "SQLite module": "_sqlite3.pyd",
    },
    "darwin": {
        "onnxruntime Python binding": "onnxruntime/capi/onnxruntime_pybind11_state*.so",
        "OpenCV extension": "cv2/**/cv2*.so",
        "Qt cocoa platform plugin": "PySide6/Qt/plugins/platforms/libqcocoa.dylib",
    },
}
# Collected by PyInstaller's Qt hooks but left out: Qt's GTK 3 platform theme would load the
# PC's GTK on top of the GTK-stack libraries bundled from the build machine (mismatched
# versions crash at start-up); the kiosk draws its own look (Fusion style + kiosk.qss).
DROPPED_BINARIES = ("PySide6/Qt/plugins/platformthemes/libqgtk3.so",)
# File names that must never appear in a bundle.
FORBIDDEN_FILES = ("libtorch*", "libc10*", "*dlib*", "test_*.py", "libqgtk3.so")


class BundleError(Exception):
    """The source tree cannot make a correct bundle."""


@dataclass
class ResourcePlan:
    """The resource files to ship: (source file, folder inside the bundle) pairs, plus notes."""

    datas: list[tuple[str, str]] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # resources/ path -> why not shipped
    warnings: list[str] = field(default_factory=list)

    def shipped(self) -> set[str]:
        """Shipped files as paths relative to resources/ (e.g. 'models/manifest.json')."""
        return {f"{dest.removeprefix('resources/')}/{Path(src).name}" for src, dest in self.datas}


def pyproject(root: Path = ROOT) -> dict[str, object]:
    with (root / "pyproject.toml").open("rb") as handle:
        project = tomllib.load(handle)["project"]
    return dict(project)


def version(root: Path = ROOT) -> str:
    return str(pyproject(root)["version"])


def requirements(root: Path = ROOT) -> list[str]:
    """The runtime dependencies of FaceGuard plus the build tools; nothing from the extras."""
    runtime = pyproject(root)["dependencies"]
    assert isinstance(runtime, list)
    return [str(item) for item in runtime] + list(BUILD_REQUIREMENTS)


def _is_payload(path: Path) -> bool:
    return (path.is_file() and not path.name.startswith(".") and path.suffix != ".pyc"
            and not path.name.endswith("~") and "__pycache__" not in path.parts)


def resource_plan(root: Path = ROOT, *, release: bool = False) -> ResourcePlan:
    """Every file under resources/ that ships, with the reason for each one that does not.

    Models ship only when manifest.json lists them (the program refuses unlisted models, and
    the self-test fails on any .onnx without a matching SHA-256), together with the manifest,
    the model cards it names and the licence notice. The other folders ship whole.
    ``release=True`` makes a missing product embedder or model card an error instead of a
    warning.
    """
    resources = root / "resources"
    plan = ResourcePlan()

    def ship(path: Path) -> None:
        folder = path.parent.relative_to(root).as_posix()
        plan.datas.append((str(path), folder))

    models = resources / "models"
    manifest_path = models / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))["models"]
    except (OSError, ValueError, KeyError) as error:
        raise BundleError(f"cannot read {manifest_path}: {error}") from error
    wanted = {"manifest.json"}
    for name, entry in manifest.items():
        if not (models / name).is_file():
            raise BundleError(f"manifest.json lists {name}, which is not in resources/models")
        wanted.add(name)
        card = entry.get("card")
        if card and (models / card).is_file():
            wanted.add(str(card))
        elif card:
            message = f"model card {card} (for {name}) is missing"
            if release:
                raise BundleError(message)
            plan.warnings.append(message)
    for path in sorted(models.iterdir()):
        if not _is_payload(path):
            continue
        if path.name in wanted or path.name == "NOTICE" or path.suffix == ".md":
            ship(path)
        elif path.suffix == ".onnx":
            plan.skipped[f"models/{path.name}"] = (
                "not listed in manifest.json (its SHA-256 could not be checked at start-up)")
        else:
            plan.skipped[f"models/{path.name}"] = "not a model, card or notice"
    if PRODUCT_EMBEDDER not in manifest:
        message = (f"the product embedder {PRODUCT_EMBEDDER} is not in resources/models "
                   "(or not in manifest.json): the bundle's self-test will fail at 'load "
                   "models' unless FACEGUARD_EMBEDDER points at another model")
        if release:
            raise BundleError(message)
        plan.warnings.append(message)

    for folder in RESOURCE_FOLDERS:
        if folder == "models":
            continue
        base = resources / folder
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*")):
            if _is_payload(path):
                ship(path)
    for top in sorted(resources.iterdir()):
        if top.is_dir() and top.name not in RESOURCE_FOLDERS:
            for path in sorted(top.rglob("*")):
                if _is_payload(path):
                    plan.skipped[path.relative_to(resources).as_posix()] = (
                        f"folder resources/{top.name} is not one of {RESOURCE_FOLDERS}")
    missing = [name for name in REQUIRED_RESOURCES if name not in plan.shipped()]
    if missing:
        raise BundleError(f"required resources missing: {', '.join(missing)}")
    return plan


def package_modules(root: Path = ROOT) -> list[str]:
    """Every faceguard module that ships (all but the excluded ones), as dotted names."""
    names = []
    for path in sorted((root / "faceguard").rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        name = ".".join(parts)
        if not any(name == ex or name.startswith(ex + ".") for ex in EXCLUDED_MODULES):
            names.append(name)
    return names


def excluded(module: str) -> bool:
    return any(module == ex or module.startswith(ex + ".") for ex in EXCLUDED_MODULES)


def dropped(destination: str) -> bool:
    """Whether a binary collected for ``destination`` (inside the bundle) is left out."""
    return destination.replace("\\", "/") in DROPPED_BINARIES


def platform_key(platform: str | None = None) -> str:
    """'linux', 'win32' or 'darwin' for ``platform`` (default: this machine's)."""
    name = sys.platform if platform is None else platform
    return "win32" if name.startswith("win") else "darwin" if name == "darwin" else "linux"


def contents_folder(app_dir: Path) -> Path:
    """Where PyInstaller put the libraries and data of a one-folder build."""
    for candidate in (app_dir / "_internal", app_dir / "Contents" / "Frameworks", app_dir):
        if (candidate / "resources").is_dir():
            return candidate
    raise BundleError(f"{app_dir} has no resources folder: not a FaceGuard bundle")


def verify_bundle(app_dir: Path, root: Path = ROOT, platform: str | None = None) -> list[str]:
    """Problems found in a built bundle (an empty list when it looks complete)."""
    problems: list[str] = []
    key = platform_key(platform)
    try:
        contents = contents_folder(app_dir)
    except BundleError as error:
        return [str(error)]
    exe = EXECUTABLE + (".exe" if key == "win32" else "")
    if key != "darwin" and not (app_dir / exe).is_file():
        problems.append(f"program {exe} missing")
    if key == "win32" and not (app_dir / f"{CLI_EXECUTABLE}.exe").is_file():
        problems.append(f"program {CLI_EXECUTABLE}.exe missing")
    for relative in sorted(resource_plan(root).shipped()):
        if not (contents / "resources" / relative).is_file():
            problems.append(f"resource missing: resources/{relative}")
    for label, pattern in NATIVE_CHECKS[key].items():
        if not any(contents.glob(pattern)):
            problems.append(f"{label} missing ({pattern})")
    for pattern in FORBIDDEN_FILES:
        found = [p.relative_to(app_dir).as_posix() for p in app_dir.rglob(pattern)]
        if found:
            problems.append(f"must not ship {pattern}: {', '.join(found[:5])}")
    for folder in ("torch", "dlib", "faceguard/training", "tests"):
        if (contents / folder).exists():
            problems.append(f"must not ship {folder}/")
    return problems


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def main(argv: list[str]) -> int:
    if argv[:1] == ["requirements"]:
        print("\n".join(requirements()))
        return 0
    if argv[:1] == ["version"]:
        print(version())
        return 0
    if argv[:1] == ["verify"] and len(argv) == 2:
        app_dir = Path(argv[1])
        problems = verify_bundle(app_dir)
        for problem in problems:
            print(f"bundle check: {problem}", file=sys.stderr)
        if not problems:
            print(f"bundle check: {app_dir} complete "
                  f"({folder_size(app_dir) / 2**20:.0f} MiB)")
        return 1 if problems else 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
