"""Deterministic augmented views of an aligned face canvas, for teacher and student alike.

A *canvas* is a face aligned on the five-point ArcFace template at the 112-pixel scale, with
``CANVAS_MARGIN`` pixels of extra context on every side (:data:`CANVAS_SIZE` square), so that
scale, shift and rotation jitter never reach past the stored pixels. A view is drawn from a
random generator seeded by ``(seed, face index, view index)`` only, so a student can rebuild
exactly the view its teacher vector was computed on::

    teacher_view, student_view = make_view(canvas, face=17, view=3, seed=0)

``teacher_view`` is 112x112 RGB uint8 (SFace's input), ``student_view`` its 96x96 area
resize (the product's input; the 96-pixel template is the 112 one scaled, so the two agree).
View 0 is the clean aligned crop, view 1 its mirror; every other view is augmented: flip,
scale/shift/rotation, colour, gamma and low light, blur or defocus or motion, low
resolution, sensor noise, JPEG artefacts and partial occlusion (bars, patches, glasses).
Change :data:`VIEWS_VERSION` whenever the recipe changes: caches record it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from faceguard.vision.alignment import TEMPLATE_112, similarity_transform

VIEWS_VERSION = 1
TEACHER_SIZE = 112
STUDENT_SIZE = 96
CANVAS_MARGIN = 16
CANVAS_SIZE = TEACHER_SIZE + 2 * CANVAS_MARGIN
TEMPLATE_CANVAS = TEMPLATE_112 + CANVAS_MARGIN


def align_canvas(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The face with these five landmarks on the 112 template plus the margin, uint8 RGB."""
    matrix = similarity_transform(landmarks, TEMPLATE_CANVAS)
    return cv2.warpAffine(image, matrix, (CANVAS_SIZE, CANVAS_SIZE), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def canvas_center_crop(canvas: np.ndarray) -> np.ndarray:
    """The clean 112x112 aligned crop inside a canvas (a plain slice, no resampling)."""
    m = CANVAS_MARGIN
    return canvas[m:m + TEACHER_SIZE, m:m + TEACHER_SIZE]


def view_rng(face: int, view: int, seed: int = 0) -> np.random.Generator:
    """The generator of one view: depends on (seed, face, view) and nothing else."""
    return np.random.default_rng([int(seed), int(face), int(view), VIEWS_VERSION])


@dataclass(frozen=True)
class ViewRecipe:
    """Probabilities and ranges of the augmentations (defaults: the version-1 recipe)."""

    flip: float = 0.5
    scale: tuple[float, float] = (0.9, 1.1)
    max_shift: float = 6.0
    max_rotation_deg: float = 12.0
    colour: float = 0.8
    gamma: float = 0.4
    low_light: float = 0.15
    blur: float = 0.3
    low_res: float = 0.2
    noise: float = 0.3
    jpeg: float = 0.35
    occlusion: float = 0.3


DEFAULT_RECIPE = ViewRecipe()


def _geometry(rng: np.random.Generator, recipe: ViewRecipe) -> np.ndarray:
    """2x3 affine map from canvas pixels to the 112 view (jitter about the view centre)."""
    scale = float(np.exp(rng.uniform(math.log(recipe.scale[0]), math.log(recipe.scale[1]))))
    angle = math.radians(rng.uniform(-recipe.max_rotation_deg, recipe.max_rotation_deg))
    shift = rng.uniform(-recipe.max_shift, recipe.max_shift, size=2)
    c = (TEACHER_SIZE - 1) / 2.0
    cos, sin = scale * math.cos(angle), scale * math.sin(angle)
    linear = np.array([[cos, -sin], [sin, cos]])
    # canvas -> template frame (minus margin) -> rotate/scale about the centre -> shift
    offset = -linear @ np.array([CANVAS_MARGIN + c, CANVAS_MARGIN + c]) + c + shift
    return np.hstack([linear, offset[:, None]])


def _colour(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Brightness, contrast, saturation and white-balance jitter (float32 in, out)."""
    grey = image.mean(axis=2, keepdims=True)
    image = grey + (image - grey) * rng.uniform(0.5, 1.4)  # saturation
    image = image * rng.uniform(0.88, 1.12, size=3).astype(np.float32)  # white balance
    mean = float(image.mean())
    image = (image - mean) * rng.uniform(0.7, 1.3) + mean + rng.uniform(-30, 30)
    return image


def _gamma(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    gamma = float(np.exp(rng.uniform(math.log(0.5), math.log(2.0))))
    return 255.0 * (np.clip(image, 0, 255) / 255.0) ** gamma


def _low_light(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A dark frame: scaled down, then shot noise stronger than ordinary sensor noise."""
    dark = image * rng.uniform(0.15, 0.45)
    sigma = rng.uniform(2.0, 8.0)
    return dark + rng.normal(0.0, sigma, size=image.shape).astype(np.float32)


def _disk_kernel(radius: float) -> np.ndarray:
    size = math.ceil(radius) * 2 + 1
    y, x = np.mgrid[:size, :size] - size // 2
    kernel = ((x * x + y * y) <= radius * radius).astype(np.float32)
    return kernel / kernel.sum()


def _motion_kernel(length: int, angle: float) -> np.ndarray:
    size = length if length % 2 else length + 1
    kernel = np.zeros((size, size), np.float32)
    c = size // 2
    dx, dy = math.cos(angle) * c, math.sin(angle) * c
    cv2.line(kernel, (round(c - dx), round(c - dy)), (round(c + dx), round(c + dy)), 1.0, 1)
    return kernel / max(float(kernel.sum()), 1.0)


def _blur(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    kind = int(rng.integers(3))
    if kind == 0:
        return cv2.GaussianBlur(image, (0, 0), float(rng.uniform(0.6, 2.0)))
    if kind == 1:
        return cv2.filter2D(image, -1, _disk_kernel(float(rng.uniform(1.0, 3.0))))
    kernel = _motion_kernel(int(rng.integers(3, 9)), float(rng.uniform(0, math.pi)))
    return cv2.filter2D(image, -1, kernel)


def _low_res(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A small, far-away face: down to 24..64 px and back up."""
    side = int(rng.integers(24, 65))
    small = cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (TEACHER_SIZE, TEACHER_SIZE), interpolation=cv2.INTER_LINEAR)


def _random_colour(rng: np.random.Generator) -> tuple[float, float, float]:
    if rng.random() < 0.5:
        level = float(rng.uniform(0, 255))
        return (level, level, level)
    r, g, b = (float(v) for v in rng.uniform(0, 255, size=3))
    return (r, g, b)


def _occlude(image: np.ndarray, rng: np.random.Generator, eyes: np.ndarray) -> np.ndarray:
    """A bar, a patch or glasses-like shapes (on ``eyes``, (2, 2) in view pixels)."""
    kind = int(rng.integers(3))
    size = TEACHER_SIZE
    if kind == 0:  # bar across the face
        thickness = int(rng.integers(8, 26))
        start = int(rng.integers(0, size - thickness))
        colour = _random_colour(rng)
        if rng.random() < 0.5:
            image[start:start + thickness, :] = colour
        else:
            image[:, start:start + thickness] = colour
    elif kind == 1:  # patch, solid or noise
        h, w = (int(v) for v in rng.integers(16, 48, size=2))
        y, x = int(rng.integers(0, size - h)), int(rng.integers(0, size - w))
        if rng.random() < 0.5:
            image[y:y + h, x:x + w] = _random_colour(rng)
        else:
            image[y:y + h, x:x + w] = rng.uniform(0, 255, size=(h, w, 3))
    else:  # glasses: two lenses and a bridge; dark (sunglasses) or a thin tinted frame
        sunglasses = rng.random() < 0.5
        axes = (int(rng.integers(11, 16)), int(rng.integers(8, 12)))
        dy = float(rng.uniform(-2, 2))
        colour = (float(rng.uniform(0, 60)),) * 3
        layer = image.copy()
        thickness = -1 if sunglasses else int(rng.integers(2, 4))
        left, right = sorted((eyes[0], eyes[1]), key=lambda point: float(point[0]))
        tilt = math.degrees(math.atan2(float(right[1] - left[1]), float(right[0] - left[0])))
        for eye in (left, right):
            centre = (round(float(eye[0])), round(float(eye[1]) + dy))
            cv2.ellipse(layer, centre, axes, tilt, 0, 360, colour, thickness)
        direction = (right - left) / max(float(np.linalg.norm(right - left)), 1e-6)
        start = left + direction * axes[0]
        end = right - direction * axes[0]
        cv2.line(layer, (round(float(start[0])), round(float(start[1]) + dy)),
                 (round(float(end[0])), round(float(end[1]) + dy)), colour, 2)
        alpha = float(rng.uniform(0.75, 0.95)) if sunglasses else 1.0
        image[:] = alpha * layer + (1.0 - alpha) * image
    return image


def _jpeg(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    # The RGB array goes to OpenCV as it is (read as BGR), so the chroma planes differ a
    # little from a camera's JPEG of the same face; kept so that version-1 views reproduce.
    quality = int(rng.integers(15, 71))
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        return image
    decoded = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    return decoded if decoded is not None else image


def augment(canvas: np.ndarray, rng: np.random.Generator,
            recipe: ViewRecipe = DEFAULT_RECIPE) -> np.ndarray:
    """One augmented 112x112 uint8 view of a canvas, drawn from ``rng``.

    Every random number is drawn whether or not its step applies, in a fixed order, so a
    recipe change in one step does not reshuffle the others.
    """
    draws = rng.random(10)
    matrix = _geometry(rng, recipe)
    view = cv2.warpAffine(canvas, matrix, (TEACHER_SIZE, TEACHER_SIZE),
                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    eyes = np.hstack([TEMPLATE_CANVAS[:2], np.ones((2, 1))]) @ matrix.T
    if draws[0] < recipe.flip:
        view = view[:, ::-1]
        eyes[:, 0] = TEACHER_SIZE - 1 - eyes[:, 0]
    image = view.astype(np.float32)
    step_rngs = [np.random.default_rng(rng.integers(2**63)) for _ in range(8)]
    if draws[1] < recipe.occlusion:
        image = _occlude(image, step_rngs[0], eyes)
    if draws[2] < recipe.colour:
        image = _colour(image, step_rngs[1])
    if draws[3] < recipe.gamma:
        image = _gamma(image, step_rngs[2])
    if draws[4] < recipe.low_light:
        image = _low_light(image, step_rngs[3])
    if draws[5] < recipe.blur:
        image = _blur(image, step_rngs[4])
    if draws[6] < recipe.low_res:
        image = _low_res(image, step_rngs[5])
    if draws[7] < recipe.noise:
        noise_rng = step_rngs[6]
        sigma = float(noise_rng.uniform(2.0, 10.0))
        image = image + np.asarray(noise_rng.normal(0.0, sigma, size=image.shape),
                                   dtype=np.float32)
    out = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    if draws[8] < recipe.jpeg:
        out = _jpeg(out, step_rngs[7])
    return np.ascontiguousarray(out)


def teacher_view(canvas: np.ndarray, face: int, view: int, seed: int = 0,
                 recipe: ViewRecipe = DEFAULT_RECIPE) -> np.ndarray:
    """The 112x112 uint8 RGB view ``view`` of face ``face`` (0: clean, 1: mirrored)."""
    if canvas.shape != (CANVAS_SIZE, CANVAS_SIZE, 3) or canvas.dtype != np.uint8:
        raise ValueError(f"expected a ({CANVAS_SIZE}, {CANVAS_SIZE}, 3) uint8 canvas, got "
                         f"{canvas.shape} {canvas.dtype}")
    if view == 0:
        return np.ascontiguousarray(canvas_center_crop(canvas))
    if view == 1:
        return np.ascontiguousarray(canvas_center_crop(canvas)[:, ::-1])
    return augment(canvas, view_rng(face, view, seed), recipe)


def student_resize(view: np.ndarray) -> np.ndarray:
    """The 96x96 student input made from a 112x112 teacher view (area resize)."""
    return cv2.resize(view, (STUDENT_SIZE, STUDENT_SIZE), interpolation=cv2.INTER_AREA)


def make_view(canvas: np.ndarray, face: int, view: int, seed: int = 0,
              recipe: ViewRecipe = DEFAULT_RECIPE) -> tuple[np.ndarray, np.ndarray]:
    """(112x112 teacher view, its 96x96 student resize), both uint8 RGB."""
    big = teacher_view(canvas, face, view, seed, recipe)
    return big, student_resize(big)
