"""Child processes: spawn with die-with-parent, the ready handshake, serving an aiohttp app, `MODULE:FACTORY`
launching. Knows no piece: the stack, the China runs and the Locust cluster all start their children here."""
