"""Wire format version 2: the same records as version 1 with a few bytes of overhead per message.

Owns the v2 frame (one byte of header, the counter's low 16 bits, an 8-byte tag), the compact items
and the crew forms (a crew message's head in 4-5 bytes, the member's handle once per epoch). Pure like
the rest of ``wire``: no sockets, files or clocks (times come in as arguments). ``docs/wire-format.md``
describes every byte.
"""
