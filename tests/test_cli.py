"""The command line end to end: real detector, tiny test embedder, fresh data folder."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceguard.cli import EXIT_ERROR, EXIT_OK, EXIT_PARTIAL, main
from faceguard.vision.image_io import load_image
from tests.conftest import TEST_THRESHOLD, demo_image
from tests.conftest import run_cli as run


def _save(path: Path, rgb: np.ndarray) -> Path:
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


def moved_copy(source: Path, target: Path) -> Path:
    """Rescaled (0.8), rotated (6 deg) and shifted copy on a larger canvas."""
    image = load_image(source)
    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), 6, 0.8)
    matrix[:, 2] += (60, 25)
    moved = cv2.warpAffine(image, matrix, (width + 120, height + 60),
                           borderMode=cv2.BORDER_CONSTANT, borderValue=(40, 40, 40))
    return _save(target, moved)


def test_enroll_then_identify_moved_copy_and_stranger(
        data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    astronaut = demo_image("astronaut.png")
    assert run(data_dir, "enroll", "Eileen Collins", str(astronaut), "--employee-id",
               "E-1") == EXIT_OK
    assert "enrolled" in capsys.readouterr().out
    copy = moved_copy(astronaut, tmp_path / "moved.png")
    stranger = demo_image("grace_hopper.jpg")
    assert run(data_dir, "identify", "--json", str(copy), str(stranger)) == EXIT_OK
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["image"] for line in lines] == [str(copy), str(stranger)]
    known = lines[0]["faces"][0]
    assert known["person"] == "Eileen Collins"
    assert known["similarity"] >= TEST_THRESHOLD
    assert len(known["box"]) == 4 and len(known["landmarks"]) == 5
    assert lines[1]["faces"][0]["person"] is None
    assert lines[1]["faces"][0]["similarity"] < TEST_THRESHOLD


def test_enroll_rejects_bad_photos_with_reasons_and_keeps_good_ones(
        data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blank = _save(tmp_path / "blank.png", np.full((300, 300, 3), 200, np.uint8))
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0garbage")
    small = load_image(demo_image("astronaut.png"))
    tiny = _save(tmp_path / "tiny.png", cv2.resize(small, (128, 128)))
    code = run(data_dir, "enroll", "Ana", str(demo_image("astronaut.png")), str(blank),
               str(demo_image("two_students.jpg")), str(corrupt), str(tiny))
    out, err = capsys.readouterr()
    assert code == EXIT_PARTIAL
    assert "4 of 5 photos rejected" in err
    assert f"rejected  {blank}: no face found" in out
    assert "2 faces found" in out
    assert f"rejected  {corrupt}: not a readable image" in out
    assert f"rejected  {tiny}: face too small" in out
    assert run(data_dir, "people", "list", "--json") == EXIT_OK
    people = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(p["name"], p["templates"]) for p in people] == [("Ana", 1)]


def test_enroll_nothing_usable_creates_nobody(data_dir: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    blank = _save(tmp_path / "blank.png", np.zeros((100, 100, 3), np.uint8))
    assert run(data_dir, "enroll", "Nobody", str(blank)) == EXIT_ERROR
    assert "no photo of Nobody could be enrolled" in capsys.readouterr().err
    run(data_dir, "people", "list")
    assert "0 people" in capsys.readouterr().out


def test_verify_json(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    astronaut = demo_image("astronaut.png")
    copy = moved_copy(astronaut, tmp_path / "moved.png")
    assert run(data_dir, "verify", str(astronaut), str(copy), "--json") == EXIT_OK
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"similarity", "same", "threshold"}
    assert result["same"] is True and result["threshold"] == TEST_THRESHOLD
    assert run(data_dir, "verify", str(astronaut), str(demo_image("grace_hopper.jpg")),
               "--json") == EXIT_OK
    assert json.loads(capsys.readouterr().out)["same"] is False


def test_embed_with_list_marks_missing_rows(data_dir: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    blank = _save(tmp_path / "blank.png", np.zeros((100, 100, 3), np.uint8))
    listing = tmp_path / "list.txt"
    listing.write_text(f"{demo_image('grace_hopper.jpg')}\n{blank}\n")
    out = tmp_path / "vectors.npy"
    code = run(data_dir, "embed", str(demo_image("astronaut.png")), "--list", str(listing),
               "--out", str(out))
    assert code == EXIT_PARTIAL
    assert f"row 2: {blank}: no face found" in capsys.readouterr().err
    matrix = np.load(out)
    assert matrix.shape == (3, 128) and matrix.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(matrix[:2], axis=1), 1.0, rtol=1e-5)
    assert np.isnan(matrix[2]).all()


def test_people_rename_remove_and_log_csv(data_dir: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert run(data_dir, "enroll", "=cmd", str(demo_image("astronaut.png"))) == EXIT_OK
    assert run(data_dir, "people", "rename", "=cmd", "Eileen") == EXIT_OK
    from faceguard.library.database import FaceLibrary, utc_now

    with FaceLibrary.open(data_dir / "faceguard.db") as library:
        person = library.find_person_by_name("Eileen")
        assert person is not None
        library.add_event(utc_now(), "door-1", person.id, 0.91, "known")
        library.add_event(utc_now(), "door-1", None, 0.2, "unknown")
    csv_file = tmp_path / "log.csv"
    assert run(data_dir, "log", "--csv", str(csv_file)) == EXIT_OK
    text = csv_file.read_text()
    assert "Eileen" in text and "unknown" in text
    assert run(data_dir, "log", "--person", "Eileen") == EXIT_OK
    assert "1 event\n" in capsys.readouterr().out
    assert run(data_dir, "people", "remove", "Eileen") == EXIT_OK
    assert run(data_dir, "people", "list") == EXIT_OK
    assert "0 people" in capsys.readouterr().out
    assert run(data_dir, "people", "remove", "Eileen") == EXIT_ERROR
    assert "no person named 'Eileen'" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["corrupt", "directory", "huge", "alpha", "sixteen", "grey"])
def test_identify_odd_inputs(kind: str, data_dir: Path, tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    portrait = cv2.cvtColor(load_image(demo_image("astronaut.png")), cv2.COLOR_RGB2BGR)
    path = tmp_path / f"{kind}.png"
    if kind == "corrupt":
        path.write_bytes(b"\x89PNG\r\n\x1a\n broken")
    elif kind == "directory":
        path.mkdir()
    elif kind == "huge":
        from tests.test_image_io import _huge_png_header

        path.write_bytes(_huge_png_header(20000, 20000))
    elif kind == "alpha":
        cv2.imwrite(str(path), np.dstack([portrait, np.full(portrait.shape[:2], 255, np.uint8)]))
    elif kind == "sixteen":
        cv2.imwrite(str(path), portrait.astype(np.uint16) * 257)
    else:
        cv2.imwrite(str(path), cv2.cvtColor(portrait, cv2.COLOR_BGR2GRAY))
    code = run(data_dir, "identify", "--json", str(path))
    out, err = capsys.readouterr()
    line = json.loads(out)
    if kind in ("corrupt", "directory", "huge"):
        assert code == EXIT_PARTIAL
        assert line["faces"] == [] and line["error"]
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    else:
        assert code == EXIT_OK
        assert len(line["faces"]) == 1


def test_unusable_data_folder_is_a_clear_error(tmp_path: Path, test_embedder_file: tuple,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code = main(["--data-dir", str(blocker / "data"), "people", "list"])
    err = capsys.readouterr().err
    assert code == EXIT_ERROR
    assert "data folder" in err and "Traceback" not in err


def test_import_folder_with_summary_and_lookalike_refusal(
        data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "people"
    (folder / "Eileen").mkdir(parents=True)
    (folder / "Nobody").mkdir()
    (folder / "Twin").mkdir()
    astronaut = demo_image("astronaut.png")
    (folder / "Eileen" / "a.png").write_bytes(astronaut.read_bytes())
    (folder / "Twin" / "same.png").write_bytes(astronaut.read_bytes())
    _save(folder / "Nobody" / "blank.png", np.zeros((120, 120, 3), np.uint8))
    assert run(data_dir, "import", str(folder)) == EXIT_PARTIAL
    out, err = capsys.readouterr()
    # The twin's photo is Eileen's face: refused by default, naming both people.
    assert "imported 1 of 3 people, 1 of 3 photos; 2 photos rejected" in out
    assert "blank.png: no face found" in out
    assert "same.png: this face already matches Eileen" in out and "as Twin" in out
    assert "importing" in err


def test_bench_json(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(data_dir, "bench", "--json", "--repeats", "2", "--sizes", "1000",
               "--sections", "stages") == EXIT_OK
    report = json.loads(capsys.readouterr().out)
    stages = {stage["stage"]: stage["ms"] for stage in report["stages"]}
    assert report["threads"]["onnxruntime_intra_op"] == 1
    assert any(name.startswith("detect 640x480") for name in stages)
    assert stages["match 1:N, 1,000 templates"] > 0
    assert all(ms is None or ms > 0 for ms in stages.values())
