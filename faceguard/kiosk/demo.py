"""The built-in demo: a throw-away library with two enrolled people, and a synthetic video.

Eileen Collins (resources/demo/astronaut.png) is enrolled in the demo group "Staff" (every
day, all day): the simulated door opens for her. Grace Hopper
(resources/demo/grace_hopper.jpg) is enrolled in "Late shift", whose hours start 6 hours
after the demo was prepared: she is recognised and refused, "Access denied: Outside your
hours". Then Eileen's photo is shown again as a synthetic screen replay
(:class:`AttackDemoSource`); the demo enforces liveness, so it is refused ("Please look at
the camera") and logged as a suspected attack, never as her. Last comes a stranger (the man
with a camera, resources/demo/camera_profile.png, in profile): "Not recognised", and the
door stays shut. The plain :data:`~faceguard.kiosk.demo_source.DEMO_SCRIPT` video (tests,
``write_demo_video``) has only Eileen and Grace.
The demo's library, settings and events live
in a temporary folder that is deleted afterwards, or in the folder given with ``--data-dir``;
the real library is never opened.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from faceguard.core.access import MINUTES_PER_DAY, local_zone
from faceguard.core.context import AppContext
from faceguard.core.enrolment import Enroller
from faceguard.errors import FaceGuardError
from faceguard.kiosk.demo_source import (
    DEMO_FPS,
    DEMO_KNOWN_PHOTO,
    DEMO_SCRIPT,
    DEMO_SIZE,
    DEMO_STRANGER_PHOTO,
    DemoShot,
    DemoSource,
)
from faceguard.kiosk.sources import SourceEnded, SourceError, SourceSpec
from faceguard.library import rules as access_store
from faceguard.paths import resources_dir
from faceguard.settings import Settings, load_settings, save_settings, settings_path
from faceguard.vision.engine import FaceEngine

DEMO_PERSON = "Eileen Collins"
DEMO_VISITOR = "Grace Hopper"  # enrolled, outside her hours: the door refuses her
DEMO_STRANGER = "the man with a camera"  # never enrolled (a profile photo)
DEMO_STRANGER_PHOTO_2 = "camera_profile.png"
DEMO_STAFF_GROUP, DEMO_LATE_GROUP = "Staff", "Late shift"
DEMO_LATE_OFFSET_H, DEMO_LATE_HOURS = 6, 2  # Late shift: from 6 h after preparing, for 2 h
DEMO_KIOSK = "demo"
# Settings the demo takes over from the real ones (the model and its operating point).
CARRIED_SETTINGS = ("model_file", "match_threshold", "match_strictness", "match_margin",
                    "threshold_far", "threshold_note", "min_face_px")


class DemoError(FaceGuardError):
    """The demo cannot be prepared."""


@dataclass
class DemoSession:
    """The demo's context and folder; :meth:`close` deletes a temporary folder."""

    ctx: AppContext
    folder: Path
    temporary: bool
    enrolled_now: bool

    def close(self) -> None:
        self.ctx.close()
        if self.temporary:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> DemoSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def demo_settings(base: Settings | None) -> Settings:
    """Fresh settings for the demo, keeping the real model and its operating point."""
    settings = Settings(kiosk_name=DEMO_KIOSK, source="demo", liveness_mode="enforce")
    if base is not None:
        settings = settings.replace(**{name: getattr(base, name) for name in CARRIED_SETTINGS})
    return settings


def prepare_demo(data_folder: str | Path | None = None, *, base: Settings | None = None,
                 min_face: int | None = None, engine: FaceEngine | None = None) -> DemoSession:
    """Open (or create) the demo's library and enrol the demo person if needed.

    ``engine`` reuses an already loaded engine (same model) instead of loading it again.
    """
    temporary = data_folder is None
    folder = Path(tempfile.mkdtemp(prefix="faceguard-demo-")) if temporary \
        else Path(data_folder).expanduser()  # type: ignore[arg-type]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if settings_path(folder).exists():
            settings = load_settings(folder)
        else:
            settings = demo_settings(base)
            save_settings(settings, folder)
        ctx = AppContext(folder, min_face=min_face, settings=settings)
        if engine is not None:
            ctx.__dict__["engine"] = engine  # fills the cached property
        enrolled_now = enrol_demo_person(ctx)
        set_demo_rules(ctx)
    except (FaceGuardError, OSError) as error:
        if temporary:
            shutil.rmtree(folder, ignore_errors=True)
        if isinstance(error, FaceGuardError):
            raise
        raise DemoError(f"cannot prepare the demo in {folder}: {error}") from error
    return DemoSession(ctx, folder, temporary, enrolled_now)


def enrol_demo_person(ctx: AppContext) -> bool:
    """Enrol Eileen Collins and Grace Hopper from the demo photos unless they are there;
    True when someone was enrolled now."""
    folder = resources_dir() / "demo"
    wanted = [(name, folder / picture, number) for name, picture, number in (
        (DEMO_PERSON, DEMO_KNOWN_PHOTO, "DEMO-1"), (DEMO_VISITOR, DEMO_STRANGER_PHOTO, "DEMO-2"))]
    missing = []
    for name, picture, number in wanted:
        found = ctx.library.find_person_by_name(name)
        if found is None or found.template_count == 0:
            missing.append((name, picture, number))
    if not missing:
        return False
    if not all(picture.is_file() for _, picture, _ in wanted):
        raise DemoError(f"the demo photos are missing from {folder}")
    enroller = Enroller(ctx.engine, ctx.library, ctx.matcher, ctx.min_face, actor="demo")
    for name, picture, number in missing:
        person, results = enroller.enroll_files(name, [picture], employee_id=number,
                                                department="Demo")
        if person is None:
            reason = results[0].reason if results else "no result"
            raise DemoError(f"the demo photo of {name} could not be enrolled: {reason}")
    return True


def set_demo_rules(ctx: AppContext, now: datetime | None = None) -> None:
    """The demo's access rules, set afresh each time the demo is prepared: Eileen in
    "Staff" (every day 00:00-24:00), Grace in "Late shift", whose hours (every day) start
    6 hours from ``now`` and last 2, so that she is outside her hours for the next 6 hours."""
    library = ctx.library
    zone = local_zone(ctx.settings.access_timezone)
    local = (now or datetime.now(zone)).astimezone(zone)
    start = (local + timedelta(hours=DEMO_LATE_OFFSET_H)).replace(second=0, microsecond=0)
    first = start.hour * 60 + start.minute
    last = (first + DEMO_LATE_HOURS * 60) % MINUTES_PER_DAY or MINUTES_PER_DAY
    existing = {g.name for g in access_store.list_groups(library)}
    with library.transaction("setting the demo's access rules"):
        for group, person, span in ((DEMO_STAFF_GROUP, DEMO_PERSON, (0, MINUTES_PER_DAY)),
                                    (DEMO_LATE_GROUP, DEMO_VISITOR, (first, last))):
            if group not in existing:
                access_store.add_group(library, group, actor="demo")
            access_store.remove_windows(library, group, actor="demo")
            for day in range(7):
                access_store.add_window(library, group, day, *span, actor="demo")
            member = library.find_person_by_name(person)
            if member is not None:
                access_store.set_membership(library, group, member.id, True, actor="demo")


def write_demo_video(path: str | Path, *, fps: float = 5.0, size: tuple[int, int] = (480, 360),
                     cycles: int = 1) -> int:
    """Write the demo's synthetic video (Motion-JPEG AVI) to a file; returns the frame count.

    For tests and scripts that need a real video file: the known person, then the stranger.
    """
    import cv2

    target = Path(path)
    writer = cv2.VideoWriter(str(target), cv2.VideoWriter.fourcc(*"MJPG"), fps, size)
    if not writer.isOpened():
        raise SourceError(f"cannot write a video to {target}")
    source = DemoSource(loop=cycles > 1, fps=fps, size=size)
    count = 0
    try:
        source.open()
        for _ in range(source.cycle_frames * cycles):
            try:
                frame = source.read()
            except SourceEnded:
                break
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
            count += 1
    finally:
        writer.release()
        source.close()
    return count


# -- the demo's presentation attack -------------------------------------------------------------

DEMO_ATTACK_KIND = "screen"  # the known person's photo replayed on a screen
DEMO_ATTACK_KEY = f"attack:{DEMO_ATTACK_KIND}:{DEMO_KNOWN_PHOTO}"
# Seed 4: recognised as her (cosine 0.84) and scored at most 0.18 live. Not every replay is
# refused: of seeds 0-7 of this screen replay, 6 stayed under 0.5 on every sampled frame of
# the shot, seeds 0 and 1 reached 0.84 and 0.67 on some (README, "Liveness").
DEMO_ATTACK_SEED = 4


def attack_script() -> tuple[DemoShot, ...]:
    """The liveness demo's cycle: the enrolled person, the stranger, then a screen replay of
    the enrolled person's photo (3 s after the stranger, so more than the visit gap after
    her real visit)."""
    gap = DEMO_SCRIPT[2]
    # Grace's photo (a scan of a print) scores live only large and evenly lit: at 100-130 px
    # 0.0-0.1, at this shot's 160-165 px 0.58-0.95 (3 of every 6 frames sampled at 6 fps),
    # so that the liveness check lets her through to the door, which refuses her.
    visitor = DemoShot(DEMO_STRANGER_PHOTO, 6.0, scale=(1.45, 1.5), centre_x=(0.56, 0.48),
                       centre_y=(0.42, 0.4), light=(0.95, 1.05), angle=(2.0, -2.0))
    # The "live" person is itself a digital photo pasted into the scene; the networks take
    # it as live only when its face is large (about 130 px and more; at 100-125 px it
    # scores 0.2-0.5), so this demo shows her closer than the plain demo does.
    live = DemoShot(DEMO_KNOWN_PHOTO, 6.0, scale=(1.3, 1.4), centre_x=(0.42, 0.56),
                    centre_y=(0.42, 0.38), light=(0.95, 1.1), angle=(-3.0, 2.0))
    return (DEMO_SCRIPT[0], live, gap, visitor, DemoShot(None, 3.0),
            DemoShot(DEMO_ATTACK_KEY, 5.0, scale=(1.35, 1.45), centre_x=(0.45, 0.55),
                     centre_y=(0.42, 0.4), light=(1.0, 1.05), angle=(-2.0, 2.0)),
            DemoShot(None, 1.5),
            DemoShot(DEMO_STRANGER_PHOTO_2, 5.0, scale=(1.15, 1.3), centre_x=(0.55, 0.45),
                     centre_y=(0.4, 0.42), light=(1.05, 0.95), angle=(2.0, -2.0)),
            DemoShot(None, 1.0))


class AttackDemoSource(DemoSource):
    """The demo video with a synthetic screen replay of the enrolled person (liveness demo).

    The replay is made once at open by :func:`faceguard.vision.attacks.screen_attack` from
    the enrolled person's photo; it is synthetic (see that module).
    """

    def __init__(self, spec: SourceSpec | None = None, *, loop: bool = True,
                 fps: float = DEMO_FPS, size: tuple[int, int] = DEMO_SIZE,
                 follow_clock: bool = False) -> None:
        super().__init__(spec, loop=loop, fps=fps, size=size, script=attack_script(),
                         follow_clock=follow_clock)
        # the stranger, in profile (face size and centre as MTCNN finds them in the photo)
        self.face_px[DEMO_STRANGER_PHOTO_2] = 58.0
        self.face_centre[DEMO_STRANGER_PHOTO_2] = (226.0, 156.0)

    def open(self) -> None:
        from faceguard.vision.attacks import make_attack

        real = [shot for shot in self.script if shot.photo != DEMO_ATTACK_KEY]
        script, self.script = self.script, tuple(real)
        try:
            super().open()
        finally:
            self.script = script
        photo = self._photos[DEMO_KNOWN_PHOTO]
        self._photos[DEMO_ATTACK_KEY] = make_attack(photo, DEMO_ATTACK_KIND, DEMO_ATTACK_SEED)
        # the replay shows the photo shrunk about its centre: place its face likewise
        size = self.face_px[DEMO_KNOWN_PHOTO]
        fx, fy = self.face_centre[DEMO_KNOWN_PHOTO]
        ph, pw = photo.shape[:2]
        shrink = 0.78
        self.face_px[DEMO_ATTACK_KEY] = size * shrink
        self.face_centre[DEMO_ATTACK_KEY] = (pw / 2 + (fx - pw / 2) * shrink,
                                             ph / 2 + (fy - ph / 2) * shrink)
