"""Quality gates for enrolment: face size, sharpness and a frontal pose from the landmarks."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from faceguard.vision.mtcnn import Face

MIN_SHARPNESS = 20.0  # variance of the Laplacian on the aligned 96x96 grey crop
MAX_YAW = 0.35  # nose offset from the eye midline, in eye distances (~ 35 degrees)
MAX_PITCH = 0.35  # deviation of the nose's vertical place between eyes and mouth
MAX_ROLL_DEG = 30.0


@dataclass(frozen=True)
class FaceQuality:
    """Measured quality of one detected, aligned face."""

    size_px: float
    sharpness: float
    yaw: float
    pitch: float
    roll_deg: float

    @property
    def score(self) -> float:
        """0..1 summary: higher is a better enrolment photo."""
        sharp = min(1.0, self.sharpness / (4 * MIN_SHARPNESS))
        frontal = max(0.0, 1.0 - abs(self.yaw) / MAX_YAW) * max(0.0, 1.0 - abs(self.pitch)
                                                                  / MAX_PITCH)
        size = min(1.0, self.size_px / 160.0)
        return round(float(0.4 * sharp + 0.4 * frontal + 0.2 * size), 4)

    def problems(self, min_face: int) -> list[str]:
        """Human-readable reasons this face is not good enough to enrol (empty if fine)."""
        reasons = []
        if self.size_px < min_face:
            reasons.append(f"face too small ({self.size_px:.0f} px, need {min_face} px)")
        if self.sharpness < MIN_SHARPNESS:
            reasons.append(f"too blurry (sharpness {self.sharpness:.0f} < {MIN_SHARPNESS:.0f})")
        if abs(self.yaw) > MAX_YAW:
            reasons.append("face turned sideways; look at the camera")
        if abs(self.pitch) > MAX_PITCH:
            reasons.append("face tilted up or down; look at the camera")
        if abs(self.roll_deg) > MAX_ROLL_DEG:
            reasons.append("head tilted too far")
        return reasons


def measure_quality(face: Face, crop: np.ndarray) -> FaceQuality:
    """Quality of a face from its landmarks and its aligned crop."""
    marks = face.landmarks.astype(np.float64)
    left_eye, right_eye, nose, mouth_left, mouth_right = marks
    eye_mid = (left_eye + right_eye) / 2
    mouth_mid = (mouth_left + mouth_right) / 2
    eye_vector = right_eye - left_eye
    eye_distance = float(np.hypot(*eye_vector)) or 1.0
    roll = float(np.degrees(np.arctan2(eye_vector[1], eye_vector[0])))
    # Project the nose onto the face's own axes (undo roll) for yaw and pitch.
    axis_x = eye_vector / eye_distance
    axis_y = np.array([-axis_x[1], axis_x[0]])
    yaw = float(np.dot(nose - eye_mid, axis_x) / eye_distance)
    face_height = float(np.dot(mouth_mid - eye_mid, axis_y)) or 1.0
    pitch = float(np.dot(nose - eye_mid, axis_y) / face_height - 0.55)
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    sharpness = float(cv2.Laplacian(grey, cv2.CV_64F).var())
    return FaceQuality(face.size, sharpness, yaw, pitch, roll)
