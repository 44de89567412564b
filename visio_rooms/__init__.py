"""The media worker: a process that holds live rooms (signalling, SFU, keyframes,
speaker detection, recording control). `visio serve` starts one per core and
hands each room's signalling to the worker its placement chose."""
