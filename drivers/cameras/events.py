"""ONVIF event topics -> citygate camera events, each with its `_cleared`.

A topic is read without its namespace prefix (`tns1:` is the usual one, but the prefix is the
camera's choice). The state is the first boolean SimpleItem of the message's Data (`State`,
`IsTamper`, `Failed`, `IsGlobalSceneChange` ... by vendor); a message with no boolean is ignored.
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers.cameras.onvif import Notification
from drivers.model import Severity

#: topic prefix (without namespace) -> (event code, severity). The longest matching prefix wins.
TOPICS: dict[str, tuple[str, Severity]] = {
    "RuleEngine/TamperDetector/Tamper": ("camera_tampering", Severity.MAJOR),
    "VideoSource/Tampering": ("camera_tampering", Severity.MAJOR),
    "VideoSource/GlobalSceneChange": ("camera_scene_change", Severity.MINOR),
    "VideoSource/ImageTooBlurry": ("camera_defocus", Severity.MINOR),
    "VideoSource/SignalLoss": ("camera_video_loss", Severity.MAJOR),
    "Device/HardwareFailure/StorageFailure": ("camera_storage_failure", Severity.MAJOR),
}
_TRUE = {"true", "1"}
_FALSE = {"false", "0"}


@dataclass(frozen=True, slots=True)
class CameraSignal:
    code: str
    severity: Severity
    active: bool
    source: str  # the video source or storage token the camera named, "" if none


def interpret(note: Notification) -> CameraSignal | None:
    """The citygate fault a notification raises or clears; None for a topic camera health ignores."""
    match = max((p for p in TOPICS if note.topic == p or note.topic.startswith(p + "/")), key=len, default=None)
    if match is None:
        return None
    state = next((v.strip().lower() for v in note.data.values() if v.strip().lower() in _TRUE | _FALSE), None)
    if state is None:
        return None
    code, severity = TOPICS[match]
    source = next(iter(note.source.values()), "")
    return CameraSignal(code, severity, state in _TRUE, source)
