"""Five-point similarity alignment of a face onto the 96x96 template.

Template: the widely used 112x112 five-point template of ArcFace/InsightFace (left eye,
right eye, nose tip, left and right mouth corner, in pixels of a 112x112 crop)::

    (38.2946, 51.6963) (73.5318, 51.5014) (56.0252, 71.7366) (41.5493, 92.3655) (70.7299, 92.2041)

scaled by 96/112 = 0.857143 (no shift: the scaled template stays centred, its eyes and mouth
at the same relative places, so the whole face keeps fitting the crop)::

    (32.824, 44.311) (63.027, 44.144) (48.022, 61.489) (35.614, 79.171) (60.626, 79.032)

The transform is the least-squares similarity (rotation, uniform scale, translation) of
Umeyama (1991), applied with cv2.warpAffine (bilinear, edges replicated).
"""

from __future__ import annotations

import cv2
import numpy as np

CROP_SIZE = 96
TEMPLATE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
     [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float64)
TEMPLATE_96 = TEMPLATE_112 * (CROP_SIZE / 112.0)


def similarity_transform(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """2x3 matrix of the least-squares similarity mapping ``source`` points onto ``target``."""
    src = np.asarray(source, dtype=np.float64)
    dst = np.asarray(target, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 2:
        raise ValueError("need two matching (N, 2) point sets with N >= 2")
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    covariance = dst_c.T @ src_c / len(src)
    u, singular, vt = np.linalg.svd(covariance)
    reflection = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        reflection[1, 1] = -1.0
    rotation = u @ reflection @ vt
    src_variance = (src_c**2).sum() / len(src)
    if src_variance <= 0:
        raise ValueError("degenerate landmarks: all points coincide")
    scale = float(np.trace(np.diag(singular) @ reflection) / src_variance)
    translation = dst_mean - scale * rotation @ src_mean
    return np.hstack([scale * rotation, translation[:, None]])


def align_face(image: np.ndarray, landmarks: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """Warp the face with these 5 landmarks onto the template: (size, size, 3) uint8 RGB."""
    template = TEMPLATE_112 * (size / 112.0)
    matrix = similarity_transform(landmarks, template)
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
