"""The media plane: forwarding of encoded frames, keyframe control, the active speaker.

Nothing here decodes or re-encodes media; `passthrough` is the one module that
reaches into aiortc's private API to make that possible.
"""
