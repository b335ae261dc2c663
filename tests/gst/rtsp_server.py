#!/usr/bin/python3
"""A third-party RTSP server for interop tests: GStreamer's gst-rtsp-server serving a live
test pattern (H.264, 320x240, 25 fps) at rtsp://127.0.0.1:PORT/test.

usage: rtsp_server.py PORT [PATTERN]   (prints "ready PORT" once it listens; PORT 0 lets the
system choose, and the line says which)

PATTERN is a videotestsrc pattern: "ball" (the default, a moving picture), "black", "smpte"
(colour bars that never move: a frozen picture)…, or "covered": the moving picture, over which
a grey board comes down on 60 % of the view when the server gets SIGUSR1 (a camera that
somebody covers once the gateway knows it), or "turned": colour bars, which pan out of view
for a grey gradient beside them when the server gets SIGUSR1 (a camera that somebody turns,
once the test saw the gateway learn its first view).
"""
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

pattern = sys.argv[2] if len(sys.argv) > 2 else "ball"
if not pattern.isalnum():
    sys.exit("bad pattern")
Gst.init(None)
server = GstRtspServer.RTSPServer()
server.set_address("127.0.0.1")
server.set_service(sys.argv[1])
factory = GstRtspServer.RTSPMediaFactory()
caps = "video/x-raw,width=320,height=240,framerate=25/1"
encode = (
    " ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=50"
    " ! rtph264pay name=pay0 pt=96 config-interval=1"
)
BALL = (
    f" videotestsrc is-live=true pattern=checkers-8 ! {caps} ! mix."
    " videotestsrc is-live=true pattern=ball background-color=0x00000000"
    " ! video/x-raw,format=AYUV,width=320,height=240,framerate=25/1 ! mix."
)
if pattern == "ball":
    # the moving ball over a textured background: on videotestsrc's plain black background
    # the picture would be dark and almost all uniform, which picture checks rightly report
    factory.set_launch(f"( compositor name=mix ! videoconvert ! video/x-raw,format=I420{encode}{BALL} )")
elif pattern == "covered":
    factory.set_launch(
        f"( compositor name=mix ! videoconvert ! video/x-raw,format=I420{encode}{BALL}"
        " videotestsrc is-live=true pattern=solid-color foreground-color=0xff5a5a5a"
        " ! video/x-raw,format=AYUV,width=250,height=190,framerate=25/1 ! mix. )"
    )

    def board_later(_factory, media):
        pad = media.get_element().get_by_name("mix").get_static_pad("sink_2")
        pad.set_property("alpha", 0.0)
        cover = lambda: pad.set_property("alpha", 1.0) or False  # noqa: E731
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGUSR1, cover)

    factory.connect("media-configure", board_later)
elif pattern == "turned":
    # colour bars (with their corner of live snow: not frozen), and beside them, out of view, a
    # grey gradient
    factory.set_launch(
        f"( compositor name=mix ! {caps} ! videoconvert ! video/x-raw,format=I420{encode}"
        f" videotestsrc is-live=true pattern=smpte ! {caps} ! mix."
        f" videotestsrc is-live=true pattern=gradient ! {caps} ! mix. )"
    )

    def pan_later(_factory, media):
        mix = media.get_element().get_by_name("mix")
        bars, gradient = mix.get_static_pad("sink_0"), mix.get_static_pad("sink_1")
        gradient.set_property("xpos", 320)

        def pan():
            bars.set_property("xpos", -320)
            gradient.set_property("xpos", 0)
            return False

        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGUSR1, pan)

    factory.connect("media-configure", pan_later)
else:
    factory.set_launch(f"( videotestsrc is-live=true pattern={pattern} ! {caps}{encode} )")
factory.set_shared(True)
server.get_mount_points().add_factory("/test", factory)
if server.attach(None) == 0:
    sys.exit("cannot listen")
print("ready", server.get_bound_port(), flush=True)
GLib.MainLoop().run()
