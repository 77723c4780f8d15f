"""The over-the-air format shared by the gateway and the shore: records, items, frames, codecs, keys.

Pure functions and sans-I/O state only: nothing here opens a socket, a file or reads a clock.
"""
