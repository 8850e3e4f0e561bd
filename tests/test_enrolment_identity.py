"""Enrolment never mixes up identities (issue: the kiosk must run for weeks, part 2).

Real detector, the tiny test embedder, a fresh data folder, the demo photos that resources/
ships (no ../shared needed)."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceguard.cli import EXIT_ERROR, EXIT_OK, EXIT_PARTIAL
from faceguard.core.context import AppContext
from faceguard.core.enrolment import Enroller, EnrolmentRefused, EnrolMode, LookAlike
from faceguard.errors import LibraryError
from faceguard.library.database import FaceLibrary
from faceguard.vision.image_io import load_image
from tests.conftest import make_data_dir
from tests.conftest import run_cli as run

REPO = Path(__file__).resolve().parents[1]
ASTRONAUT = REPO / "resources" / "demo" / "astronaut.png"
GRACE = REPO / "resources" / "demo" / "grace_hopper.jpg"




def templates_of(data_dir: Path, name: str) -> int:
    with FaceLibrary.open(data_dir / "faceguard.db") as library:
        person = library.find_person_by_name(name)
        return 0 if person is None else len(library.list_templates(person.id))


def variant(source: Path, target: Path, scale: float, shift: tuple[int, int]) -> Path:
    """The same face rescaled and shifted (a different file, the same person)."""
    image = load_image(source)
    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), 0, scale)
    matrix[:, 2] += shift
    moved = cv2.warpAffine(image, matrix, (width, height), borderMode=cv2.BORDER_REFLECT)
    cv2.imwrite(str(target), cv2.cvtColor(moved, cv2.COLOR_RGB2BGR))
    return target


def test_an_existing_name_is_refused_unless_photos_are_added_explicitly(
        data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(data_dir, "enroll", "Grace Hopper", "--employee-id", "E1", str(GRACE)) == EXIT_OK
    capsys.readouterr()
    # Another person under the same name (case and spaces differ): refused, nothing added.
    assert run(data_dir, "enroll", "grace  hopper", "--employee-id", "E999",
               str(ASTRONAUT)) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "Grace Hopper (employee id E1) is already enrolled" in err and "--add" in err
    assert templates_of(data_dir, "Grace Hopper") == 1
    # --add with another employee id: refused (that is someone else).
    assert run(data_dir, "enroll", "Grace Hopper", "--add", "--employee-id", "E999",
               str(GRACE)) == EXIT_ERROR
    assert "enrolled with employee id 'E1', not 'E999'" in capsys.readouterr().err
    # --add with a different face: the photo must look like her, so it is refused.
    assert run(data_dir, "enroll", "Grace Hopper", "--add", str(ASTRONAUT)) == EXIT_ERROR
    assert "does not look like Grace Hopper's enrolled photos" in capsys.readouterr().out
    assert templates_of(data_dir, "Grace Hopper") == 1
    # --add with another photo of her is fine.
    again = variant(GRACE, tmp_path / "grace2.png", 0.95, (4, 3))
    assert run(data_dir, "enroll", "Grace Hopper", "--add", str(again)) == EXIT_OK
    assert templates_of(data_dir, "Grace Hopper") == 2
    # The admin may confirm a mismatch; it is audited.
    assert run(data_dir, "enroll", "Grace Hopper", "--add", "--accept-mismatch",
               str(ASTRONAUT)) == EXIT_OK
    with FaceLibrary.open(data_dir / "faceguard.db") as library:
        audit = [a for a in library.list_audit(limit=20) if a.action == "enrol_resolved"]
    assert audit and "mismatch_accepted" in audit[0].details
    assert run(data_dir, "enroll", "Nobody Yet", "--add", str(GRACE)) == EXIT_ERROR
    assert "no one named 'Nobody Yet' is enrolled" in capsys.readouterr().err


def test_the_same_face_under_a_second_name_is_refused_then_resolved(
        data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(data_dir, "enroll", "Eileen Collins", str(ASTRONAUT)) == EXIT_OK
    capsys.readouterr()
    assert run(data_dir, "enroll", "Someone Else", str(ASTRONAUT)) == EXIT_ERROR
    out = capsys.readouterr().out
    assert "already matches Eileen Collins" in out and "as Someone Else" in out
    assert templates_of(data_dir, "Someone Else") == 0
    # Forcing needs a reason; with one, it is enrolled and the reason is audited.
    assert run(data_dir, "enroll", "Someone Else", "--if-lookalike", "force",
               str(ASTRONAUT)) == EXIT_ERROR
    assert "needs a reason" in capsys.readouterr().err
    assert run(data_dir, "enroll", "Someone Else", "--if-lookalike", "force", "--reason",
               "identical twins, checked by HR", str(ASTRONAUT)) == EXIT_OK
    assert templates_of(data_dir, "Someone Else") == 1
    with FaceLibrary.open(data_dir / "faceguard.db") as library:
        audit = [a for a in library.list_audit(limit=20) if a.action == "enrol_resolved"]
    assert "identical twins, checked by HR" in audit[0].details
    assert "lookalike_force" in audit[0].details


def test_merge_and_replace_resolve_a_lookalike(ctx: AppContext) -> None:
    enroller = Enroller(ctx.engine, ctx.library, ctx.matcher, ctx.min_face)
    eileen, _ = enroller.enroll_files("Eileen Collins", [ASTRONAUT])
    assert eileen is not None
    person, results = enroller.enroll_files("E. Collins", [ASTRONAUT], lookalike=LookAlike.MERGE)
    assert person is None and results[0].accepted
    assert results[0].person_name == "Eileen Collins"
    assert len(ctx.library.list_templates(eileen.id)) == 2
    assert ctx.library.find_person_by_name("E. Collins") is None
    person, results = enroller.enroll_files("Eileen M. Collins", [ASTRONAUT],
                                            lookalike=LookAlike.REPLACE, reason="renamed")
    assert person is not None and results[0].accepted
    assert ctx.library.find_person_by_name("Eileen Collins") is None  # the old record is gone
    assert [p.name for p in ctx.library.list_people()] == ["Eileen M. Collins"]
    observed = ctx.engine.embed_largest(load_image(ASTRONAUT))
    assert observed is not None and observed.embedding is not None
    assert ctx.matcher.search(observed.embedding)[0].person_id == person.id
    assert any(a.action == "replace_person" for a in ctx.library.list_audit(limit=10))


def test_employee_ids_are_unique_regardless_of_case() -> None:
    library = FaceLibrary.in_memory()
    library.add_person("Ana", "emp-7")
    with pytest.raises(LibraryError, match=r"already belongs to 'Ana'.*as 'emp-7'"):
        library.add_person("Bea", "EMP-7")
    bea = library.add_person("Bea", "EMP-8")
    with pytest.raises(LibraryError, match="already belongs to 'Ana'"):
        library.update_person(bea.id, employee_id="Emp-7")


def test_names_are_normalised_and_invisible_characters_refused() -> None:
    library = FaceLibrary.in_memory()
    zoe = library.add_person("Zoe\u0301 Dupont")  # e + combining acute accent
    assert zoe.name == "Zoé Dupont"
    with pytest.raises(LibraryError, match="already exists"):
        library.add_person("ZOÉ  DUPONT")
    for name in ("Ana\u202eZ", "An\u200ba", "Ana\u2066B\u2069", "\u200dAna"):
        with pytest.raises(LibraryError, match="invisible formatting characters"):
            library.add_person(name)
    with pytest.raises(LibraryError, match="invisible"):
        library.add_person("Ana", "E\u200b1")


def test_import_is_idempotent(data_dir: Path, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "people" / "Eileen Collins"
    folder.mkdir(parents=True)
    shutil.copy(ASTRONAUT, folder / "a.png")
    variant(ASTRONAUT, folder / "b.png", 0.95, (5, 0))
    variant(ASTRONAUT, folder / "c.png", 1.05, (0, 5))
    assert run(data_dir, "import", str(folder.parent)) == EXIT_OK
    assert "imported 1 of 1 person, 3 of 3 photos; 0 photos rejected" in \
        capsys.readouterr().out
    # An interrupted import is run again: nothing is duplicated.
    assert run(data_dir, "import", str(folder.parent)) == EXIT_OK
    assert "imported 1 of 1 person, 0 of 3 photos; 0 photos rejected, 3 already enrolled" in \
        capsys.readouterr().out
    assert templates_of(data_dir, "Eileen Collins") == 3
    # One more photo later: only it is added.
    variant(ASTRONAUT, folder / "d.png", 0.9, (3, 3))
    assert run(data_dir, "import", str(folder.parent)) == EXIT_OK
    assert "1 of 4 photos; 0 photos rejected, 3 already enrolled" in capsys.readouterr().out
    assert templates_of(data_dir, "Eileen Collins") == 4
    # The same file given twice to enroll --add is enrolled once.
    assert run(data_dir, "enroll", "Eileen Collins", "--add", str(folder / "a.png"),
               str(folder / "a.png")) == EXIT_OK
    assert "nothing new" in capsys.readouterr().out


def test_a_gif_is_enrolled_and_a_refusal_needs_no_slow_checks(
        data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gif = tmp_path / "eileen.gif"
    cv2.imwrite(str(tmp_path / "tmp.png"), cv2.imread(str(ASTRONAUT)))
    import subprocess

    if shutil.which("convert") is None:
        pytest.skip("needs ImageMagick's convert to write a GIF")
    subprocess.run(["convert", str(tmp_path / "tmp.png"), str(gif)], check=True)
    assert run(data_dir, "enroll", "Eileen Collins", str(gif)) == EXIT_OK
    assert run(data_dir, "enroll", "Eileen Collins", str(tmp_path / "missing.png")) == \
        EXIT_ERROR  # refused for the name before the (missing) file is even read
    assert "already enrolled" in capsys.readouterr().err


def test_partial_enrolment_still_says_what_was_refused(
        data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.zeros((120, 120, 3), np.uint8))
    assert run(data_dir, "enroll", "Eileen Collins", str(ASTRONAUT), str(blank)) == EXIT_PARTIAL
    out = capsys.readouterr().out
    assert "rejected  " in out and "no face found" in out


@pytest.fixture()
def ctx(tmp_path: Path, test_embedder_env: tuple[Path, str]):  # type: ignore[no-untyped-def]
    context = AppContext(make_data_dir(tmp_path))
    yield context
    context.close()


def test_enrol_modes_in_the_core(ctx: AppContext) -> None:
    enroller = Enroller(ctx.engine, ctx.library, ctx.matcher, ctx.min_face)
    enroller.enroll_files("Grace Hopper", [GRACE], employee_id="E1")
    with pytest.raises(EnrolmentRefused):
        enroller.enroll_files("GRACE HOPPER", [GRACE])
    person, results = enroller.enroll_files("Grace Hopper", [GRACE], mode=EnrolMode.ADD)
    assert person is not None and results[0].skipped  # the same file
