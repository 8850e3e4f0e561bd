"""Liveness in the kiosk: the N-of-M liveness vote, modes, attack events, alert, end to end."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlite_utils import Database

from faceguard.cli import EXIT_OK, main
from faceguard.kiosk.decisions import Candidate, Decider, DecisionPolicy, KioskEvent
from faceguard.kiosk.liveness_gate import LivenessPolicy
from faceguard.library.database import MIGRATION_NAMES, MIGRATIONS, FaceLibrary
from faceguard.settings import Settings, SettingsError, save_settings
from tests.conftest import make_data_dir

REPO = Path(__file__).resolve().parents[1]
ASTRONAUT = REPO / "resources" / "demo" / "astronaut.png"
SAMPLES = REPO.parent / "shared" / "models" / "silent-face-anti-spoofing" / "samples"
T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
FRAME_S = 1 / 15


def drive(decider: Decider, frames: list[float | str | None], *, person: int | None = 7,
          start: datetime = T0) -> tuple[list[KioskEvent], list[object], datetime]:
    """Feed frames to a decider: a number (live score), None (unsure face), "gone" (no face).

    The score is given to the decider only where it says the frame is due for liveness,
    as the pipeline does. Returns the events, the outcomes and the time after the last frame.
    """
    events: list[KioskEvent] = []
    outcomes: list[object] = []
    now = start
    for value in frames:
        if value == "gone":
            outcome = decider.update(None, now)
        else:
            label = -1 if person is None else person
            due = decider.liveness_due(label, now)
            score = value if due and not isinstance(value, str) else None
            outcome = decider.update(Candidate(person, 0.9, "Ana", None, score, due), now)
        outcomes.append(outcome)
        if outcome.event is not None:
            events.append(outcome.event)
        now += timedelta(seconds=FRAME_S)
    return events, outcomes, now


def policy(mode: str, **liveness: object) -> DecisionPolicy:
    """A decision policy with this liveness mode; stride 2 unless given (short sequences)."""
    liveness.setdefault("stride", 2)
    return DecisionPolicy(liveness=LivenessPolicy(mode, **liveness))  # type: ignore[arg-type]


# -- the decider -------------------------------------------------------------------------------

def test_mode_off_scores_nothing_and_decides_as_without_liveness() -> None:
    frames: list[float | str | None] = [0.0, 0.0, 0.0, 0.0, 0.0, "gone", 0.0, 0.0, 0.0]
    plain = Decider(DecisionPolicy(), "k")
    off = Decider(policy("off"), "k")
    _, plain_outcomes, _ = drive(plain, frames)
    off_events, off_outcomes, _ = drive(off, frames)
    assert off_outcomes == plain_outcomes
    assert [(e.decision, e.direction, e.liveness) for e in off_events] == [("known", "IN", None)]
    assert not any(off.liveness_due(7, T0 + timedelta(seconds=s)) for s in range(30))
    # observe scores but decides the same: only the recorded score differs
    observe_events, observe_outcomes, _ = drive(Decider(policy("observe"), "k"), frames)
    assert [(o.verdict, o.previous) for o in observe_outcomes] == \
        [(o.verdict, o.previous) for o in off_outcomes]  # type: ignore[attr-defined]
    assert [(e.decision, e.direction) for e in observe_events] == [("known", "IN")]
    assert observe_events[0].liveness == 0.0
    assert DecisionPolicy.from_settings(Settings(liveness_mode="off")).liveness.mode == "off"


def test_enforce_accepts_a_live_visit_with_its_score() -> None:
    decider = Decider(policy("enforce"), "k")
    events, outcomes, _ = drive(decider, [0.9, 0.9, 0.8, 0.9, 0.9, 0.9])
    assert [(e.decision, e.direction) for e in events] == [("known", "IN")]
    assert events[0].liveness == pytest.approx(0.85)  # frames 1 and 3 were scored (stride 2)
    assert outcomes[2].liveness == "live"  # type: ignore[attr-defined]


def test_default_stride_scores_frames_one_five_and_nine() -> None:
    decider = Decider(DecisionPolicy(liveness=LivenessPolicy("enforce")), "k")
    due = []
    now = T0
    for _ in range(10):
        due.append(decider.liveness_due(7, now))
        decider.update(Candidate(7, 0.9, "Ana", None, 0.1 if due[-1] else None, due[-1]), now)
        now += timedelta(seconds=FRAME_S)
    assert [i + 1 for i, d in enumerate(due) if d] == [1, 5, 9]


def test_enforce_refuses_a_visit_that_is_not_live() -> None:
    decider = Decider(policy("enforce"), "k")
    events, outcomes, _ = drive(decider, [0.1, 0.1, 0.9, 0.1, 0.1, 0.1, 0.9, 0.9, 0.9, 0.9])
    assert [e.decision for e in events] == ["attack"]
    attack = events[0]
    # no person (attendance never counts it), no IN/OUT, the claimed name kept for the log
    assert attack.person_id is None and attack.direction is None
    assert attack.claimed_name == "Ana" and attack.attack
    assert attack.liveness == pytest.approx((0.1 + 0.9 + 0.1) / 3)
    assert attack.to_json()["decision"] == "attack"
    # the visit stays refused while the face is in view, however live it looks later
    assert all(o.liveness == "attack" for o in outcomes[5:])  # type: ignore[attr-defined]


def test_unsure_faces_never_count_as_live() -> None:
    decider = Decider(policy("enforce"), "k")
    events, outcomes, _ = drive(decider, [None] * 12)
    assert [e.decision for e in events] == ["attack"]
    assert events[0].liveness is None
    assert not any(o.liveness == "live" for o in outcomes)  # type: ignore[attr-defined]
    # one unsure frame cannot complete a live vote either
    mixed = Decider(policy("enforce", votes_required=2, votes_window=3), "k")
    events, _, _ = drive(mixed, [0.9, 0.9, None, 0.1, 0.1, 0.1])
    assert [e.decision for e in events] == ["attack"]


def test_observe_never_blocks_and_records_the_score() -> None:
    decider = Decider(policy("observe"), "k")
    events, outcomes, _ = drive(decider, [0.05, 0.05, 0.05, 0.05])
    assert [(e.decision, e.direction) for e in events] == [("known", "IN")]
    assert events[0].liveness == pytest.approx(0.05)
    assert outcomes[2].liveness == "pending"  # type: ignore[attr-defined]


def test_each_new_presentation_is_a_new_attempt_and_repeats_raise_an_alert() -> None:
    decider = Decider(policy("enforce", alert_attempts=3, alert_window_s=60.0), "k")
    attempt: list[float | str | None] = [0.1] * 8 + ["gone"] * 15
    events, outcomes, _ = drive(decider, attempt * 3)
    assert [e.decision for e in events] == ["attack", "attack", "attack"]
    alerts = [o.alert for o in outcomes if o.alert is not None]  # type: ignore[attr-defined]
    assert len(alerts) == 1 and alerts[0].attempts == 3 and "Ana" in alerts[0].message()
    assert events[2].alert is alerts[0] and events[0].alert is None  # the GUI gets it
    # a live presentation after the attempts is accepted as usual
    more, _, _ = drive(decider, [0.9] * 6, start=T0 + timedelta(seconds=30))
    assert [(e.decision, e.direction) for e in more] == [("known", "IN")]


def test_liveness_settings_are_validated() -> None:
    with pytest.raises(SettingsError, match="liveness_mode"):
        Settings(liveness_mode="strict")
    with pytest.raises(SettingsError, match="liveness_threshold"):
        Settings(liveness_threshold=1.5)
    with pytest.raises(SettingsError, match="liveness_votes_required"):
        Settings(liveness_votes_required=4, liveness_votes_window=3)
    loaded = Settings.from_dict({"liveness_mode": "nope", "liveness_threshold": 0.7})
    assert loaded.liveness_mode == Settings().liveness_mode and loaded.liveness_threshold == 0.7


# -- the library ---------------------------------------------------------------------------------

def test_migration_007_adds_the_liveness_column(tmp_path: Path) -> None:
    assert "007_liveness" in MIGRATION_NAMES
    path = tmp_path / "old.db"
    db = Database(path)
    MIGRATIONS.apply(db, stop_before="007_liveness")
    db.execute("INSERT INTO events (timestamp, kiosk_id, decision) VALUES (?, 'k', 'unknown')",
               (T0.isoformat(),))
    db.conn.commit()
    db.close()
    with FaceLibrary.open(path) as library:
        old = library.query_events()
        assert [e.liveness for e in old] == [None]
        new = library.add_event(T0 + timedelta(minutes=1), "k", None, 0.3, "attack",
                                liveness=0.125)
        assert new.liveness == 0.125
        assert [e.liveness for e in library.query_events()] == [None, 0.125]
    conn = sqlite3.connect(path)
    assert "liveness" in {row[1] for row in conn.execute("PRAGMA table_info(events)")}
    conn.close()


# -- end to end with the real liveness networks ---------------------------------------------------

@pytest.fixture(scope="module")
def attack_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The liveness demo (enrolled person, stranger, screen replay of the enrolled person)."""
    import cv2

    from faceguard.kiosk.demo import AttackDemoSource

    path = tmp_path_factory.mktemp("video") / "attack.avi"
    fps, size = 6.0, (640, 480)
    source = AttackDemoSource(loop=False, fps=fps, size=size)
    source.open()
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, size)
    for index in range(source.cycle_frames):
        writer.write(cv2.cvtColor(source.render(index), cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def product_data_dir(parent: Path, **values: object) -> Path:
    """A data folder on the product embedder and its calibrated threshold: the tiny test
    embedder compares pixels and does not match a screen replay to the photo it shows."""
    folder = parent / "data"
    save_settings(Settings(kiosk_name="door", repeat_window_s=0, consent_required="off",
                           **values),  # type: ignore[arg-type]
                  folder)
    return folder


def run_video(data_dir: Path, video: Path, capsys: pytest.CaptureFixture[str]
              ) -> tuple[list[dict[str, object]], str]:
    assert main(["--data-dir", str(data_dir), "enroll", "Eileen Collins",
                 str(ASTRONAUT)]) == EXIT_OK
    capsys.readouterr()
    code = main(["--data-dir", str(data_dir), "run", "--source", str(video), "--headless"])
    out, err = capsys.readouterr()
    assert code == EXIT_OK, err
    return [json.loads(line) for line in out.splitlines()], err


def test_kiosk_refuses_the_screen_replay_and_logs_it_as_an_attack(
        tmp_path: Path, attack_video: Path, capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    # repeat window 0: were the replay taken for her, it would be logged as her OUT
    data_dir = product_data_dir(tmp_path, liveness_mode="enforce",
                                liveness_alert_attempts=1)  # the first attempt alerts
    events, err = run_video(data_dir, attack_video, capsys)
    decisions = [(e["decision"], e["person"], e["direction"]) for e in events]
    assert decisions == [("known", "Eileen Collins", "IN"), ("unknown", None, None),
                         ("attack", None, None)], decisions
    live, _, attack = events
    assert isinstance(live["liveness"], float) and live["liveness"] >= 0.5
    assert attack["liveness"] is None or float(attack["liveness"]) < 0.5  # type: ignore[arg-type]
    assert "1 suspected attack" in err
    assert "presentation attack suspected" in caplog.text
    with FaceLibrary.open(data_dir / "faceguard.db") as library:
        stored = library.query_events(decision="attack", with_crops=True)
        assert len(stored) == 1 and stored[0].crop_jpeg and stored[0].person_id is None
        assert library.count_events(decision="known") == 1  # no IN/OUT for the replay
        alerts = [a for a in library.list_audit() if a.action == "liveness_alert"]
        assert len(alerts) == 1 and "Eileen Collins" in alerts[0].details
    assert "liveness alert" in caplog.text
    assert main(["--data-dir", str(data_dir), "log", "--decision", "attack"]) == EXIT_OK
    listed = capsys.readouterr().out
    assert "attack" in listed and "1 event" in listed


def test_mode_off_end_to_end_loads_no_liveness_and_logs_what_it_always_did(
        tmp_path: Path, attack_video: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    import faceguard.vision.liveness as liveness_module

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("liveness was loaded in mode off")

    monkeypatch.setattr(liveness_module.LivenessChecker, "__init__", refuse)
    data_dir = product_data_dir(tmp_path, liveness_mode="off")
    events, err = run_video(data_dir, attack_video, capsys)
    # what the kiosk did before liveness: her IN, the stranger; the replay (read within the
    # visit gap, the file plays faster than real time) continues her visit unchallenged
    assert [(e["decision"], e["person"], e["direction"]) for e in events] == \
        [("known", "Eileen Collins", "IN"), ("unknown", None, None)]
    assert all(e["liveness"] is None for e in events)
    assert "suspected attack" not in err


def test_enforce_with_a_damaged_model_is_a_start_up_error(
        tmp_path: Path, test_embedder_env: tuple[Path, str],
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    from faceguard.errors import ModelError
    from faceguard.vision.liveness import checker_for_mode

    broken = tmp_path / "models"
    broken.mkdir()
    with pytest.raises(ModelError, match="enforce"):
        checker_for_mode("enforce", broken)
    assert checker_for_mode("observe", broken) is None
    assert "cannot be loaded" in caplog.text
    assert checker_for_mode("off", broken) is None


# -- the command line -----------------------------------------------------------------------------

def test_identify_json_gives_liveness_and_its_threshold(
        tmp_path: Path, test_embedder_env: tuple[Path, str],
        capsys: pytest.CaptureFixture[str]) -> None:
    data_dir = make_data_dir(tmp_path, liveness_mode="observe", liveness_threshold=0.6)
    assert main(["--data-dir", str(data_dir), "identify", "--json", str(ASTRONAUT)]) == EXIT_OK
    line = json.loads(capsys.readouterr().out)
    assert line["liveness_threshold"] == 0.6
    face = line["faces"][0]
    assert isinstance(face["liveness"], float) and 0.0 <= face["liveness"] <= 1.0
    (tmp_path / "off").mkdir()
    off_dir = make_data_dir(tmp_path / "off", liveness_mode="off")
    assert main(["--data-dir", str(off_dir), "identify", "--json", str(ASTRONAUT)]) == EXIT_OK
    line = json.loads(capsys.readouterr().out)
    assert line["liveness_threshold"] is None and line["faces"][0]["liveness"] is None


def test_identify_json_liveness_is_null_for_a_face_too_small_to_judge(
        tmp_path: Path, test_embedder_env: tuple[Path, str],
        capsys: pytest.CaptureFixture[str]) -> None:
    import cv2

    from faceguard.vision.image_io import load_image

    small = tmp_path / "small.png"
    image = load_image(ASTRONAUT)
    # a face of about 45 px: detected (--min-face 20) but under the 40 px liveness minimum
    # once MTCNN's box is drawn, or at least never a live score without a face to judge
    shrunk = cv2.resize(image, (image.shape[1] * 2 // 5, image.shape[0] * 2 // 5),
                        interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(small), cv2.cvtColor(shrunk, cv2.COLOR_RGB2BGR))
    data_dir = make_data_dir(tmp_path, liveness_mode="observe")
    assert main(["--data-dir", str(data_dir), "--min-face", "20", "identify", "--json",
                 str(small)]) == EXIT_OK
    faces = json.loads(capsys.readouterr().out)["faces"]
    assert faces and all(f["liveness"] is None for f in faces)


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="needs ../shared/models/silent-face-anti-"
                    "spoofing/samples")
def test_eval_liveness_json_on_upstreams_samples(
        tmp_path: Path, test_embedder_env: tuple[Path, str],
        capsys: pytest.CaptureFixture[str]) -> None:
    live, attack = tmp_path / "live", tmp_path / "attack"
    live.mkdir()
    attack.mkdir()
    (live / "T1.jpg").write_bytes((SAMPLES / "image_T1.jpg").read_bytes())
    for name in ("F1", "F2"):
        (attack / f"{name}.jpg").write_bytes((SAMPLES / f"image_{name}.jpg").read_bytes())
    data_dir = make_data_dir(tmp_path)
    det = tmp_path / "det.png"
    assert main(["--data-dir", str(data_dir), "eval", "liveness", "--live", str(live),
                 "--attack", str(attack), "--json", "--det", str(det)]) == EXIT_OK
    report = json.loads(capsys.readouterr().out)
    assert {"apcer", "bpcer", "acer", "threshold", "live", "attack"} <= set(report)
    assert (report["apcer"], report["bpcer"], report["acer"]) == (0.0, 0.0, 0.0)
    assert (report["live"], report["attack"]) == (1, 2)
    assert report["threshold"] == Settings().liveness_threshold
    assert "ISO/IEC 30107-3" in report["note"] and "no conformance" in report["note"]
    assert det.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_synthetic_attacks_are_reproducible_and_keep_the_size() -> None:
    from faceguard.vision.attacks import make_attack
    from faceguard.vision.image_io import load_image

    photo = load_image(ASTRONAUT)
    for kind in ("print", "screen"):
        first, again = make_attack(photo, kind, 3), make_attack(photo, kind, 3)
        assert first.shape == photo.shape and first.dtype == np.uint8
        assert np.array_equal(first, again)
        assert not np.array_equal(first, make_attack(photo, kind, 4))
    with pytest.raises(ValueError, match="unknown attack kind"):
        make_attack(photo, "mask")
