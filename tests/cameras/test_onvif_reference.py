"""onvif-zeep-async, the maintained ONVIF client, reads the simulator as the driver's own parsers do:
the simulator speaks ONVIF a real client accepts, and the driver's stdlib parsers agree with zeep's
WSDL-driven ones on identity, clock, PullPoint events and the stream's resolution."""

from __future__ import annotations

from datetime import UTC, datetime

from onvif import ONVIFCamera

from drivers.cameras import client, onvif
from drivers.cameras.events import interpret
from simulators.cameras import CameraSim
from tests.cameras.camkit import PASSWORD

PULLPOINT = "http://www.onvif.org/ver10/events/wsdl/PullPointSubscription"


async def test_onvif_zeep_async_and_the_driver_read_the_simulator_alike() -> None:
    async with CameraSim("cam-1", password=PASSWORD, http_digest=False) as sim:
        sim.raise_fault("tampering")
        sim.drift_s = 20.0
        ref = ONVIFCamera("127.0.0.1", sim.onvif_port, "watch", PASSWORD, adjust_time=True)
        try:
            await ref.update_xaddrs()  # GetSystemDateAndTime (its clock offset), then GetServices
            dev = await ref.create_devicemgmt_service()
            ref_info = await dev.GetDeviceInformation()  # WS-UsernameToken, Created in the camera's time
            u = (await dev.GetSystemDateAndTime()).UTCDateTime
            ref_clock = datetime(u.Date.Year, u.Date.Month, u.Date.Day, u.Time.Hour, u.Time.Minute, u.Time.Second,
                                 tzinfo=UTC)
            ref_ahead = (ref_clock - datetime.now(UTC)).total_seconds()
            events = await ref.create_events_service()
            sub = await events.CreatePullPointSubscription({"InitialTerminationTime": "PT600S"})
            ref.xaddrs[PULLPOINT] = sub.SubscriptionReference.Address._value_1
            pull = await ref.create_pullpoint_service()
            got = await pull.PullMessages({"Timeout": "PT1S", "MessageLimit": 32})
            ref_notes = {(m.Topic._value_1.split(":", 1)[1], m.Message._value_1.PropertyOperation,
                          tuple((i.Name, i.Value) for i in m.Message._value_1.Data.SimpleItem))
                         for m in got.NotificationMessage}
            media = await ref.create_media_service()
            resolution = (await media.GetProfiles())[0].VideoEncoderConfiguration.Resolution
        finally:
            await ref.close()

        creds = onvif.Credentials("watch", PASSWORD)

        async def ask(op: str, path: str = "/onvif/device_service", to: str | None = None, arg: int = 0) -> bytes:
            maker = client.BodyMaker(op, creds, sim.now, to, arg)
            return await client.soap_call("127.0.0.1", sim.onvif_port, path, maker, 2.0, creds)

        info = onvif.parse_device_information(await ask("GetDeviceInformation"))
        clock = onvif.parse_system_date_and_time(await ask("GetSystemDateAndTime"))
        ahead = (clock - datetime.now(UTC)).total_seconds()
        address = onvif.parse_subscription(await ask("CreatePullPointSubscription", "/onvif/event_service", arg=600))
        notes = onvif.parse_pull_messages(await ask("PullMessages", address.split(str(sim.onvif_port), 1)[1],
                                                    to=address, arg=1))
        probe = await client.probe_stream("127.0.0.1", sim.rtsp_port, "/stream1", 2.0, creds)

    assert (info.manufacturer, info.model, info.firmware, info.serial, info.hardware) == (
        ref_info.Manufacturer, ref_info.Model, ref_info.FirmwareVersion, ref_info.SerialNumber, ref_info.HardwareId)
    assert abs(ahead - 20) <= 1.5 and abs(ref_ahead - 20) <= 1.5  # both read the camera 20 s ahead
    assert {(n.topic, n.operation, tuple(n.data.items())) for n in notes} == ref_notes
    tamper = [interpret(n) for n in notes if n.topic == "RuleEngine/TamperDetector/Tamper"]
    assert [(s.code, s.active) for s in tamper if s] == [("camera_tampering", True)]
    assert (probe.video[0].width, probe.video[0].height) == (resolution.Width, resolution.Height) == (1920, 1080)
