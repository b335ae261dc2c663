#!/usr/bin/python3
"""Renders GStreamer's videotestsrc PATTERN as raw I420 frames, for the picture checks' scene set.

usage: render_pattern.py PATTERN WIDTH HEIGHT FRAMES OUT

Writes FRAMES frames of WIDTH x HEIGHT (25 fps) to the file OUT, one after another.
"""
import sys

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

pattern, width, height, frames, out = sys.argv[1:6]
if not pattern.replace("-", "").isalnum() or not (width + height + frames).isdigit():
    sys.exit("bad arguments")
Gst.init(None)
pipeline = Gst.parse_launch(
    f"videotestsrc pattern={pattern} num-buffers={int(frames)}"
    f" ! video/x-raw,format=I420,width={int(width)},height={int(height)},framerate=25/1"
    " ! filesink name=out"
)
pipeline.get_by_name("out").set_property("location", out)
pipeline.set_state(Gst.State.PLAYING)
message = pipeline.get_bus().timed_pop_filtered(
    30 * Gst.SECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR
)
pipeline.set_state(Gst.State.NULL)
if message is None or message.type != Gst.MessageType.EOS:
    sys.exit(f"videotestsrc {pattern}: {message.parse_error() if message else 'timed out'}")
