"""Rate limits: sliding-window counts per bucket, shared by every serving process through the
database (``shared``), decided in memory (``window``). Nothing here knows about HTTP."""
