"""gevent protocol clients for Locust workers and gevent scripts (the locustfiles stay thin).

    events.py    Reporter: fires Locust `request` events (or a ListEvent / callbacks / nothing); RequestFailed
    http.py      Transport over FastHttpSession: one timed call, one event, a Reply; Supabase error decoding
    supabase.py  SupabaseSession: auth with refresh, PostgREST, Storage, Edge Functions
    realtime.py  RealtimeClient: Phoenix vsn 1.0.0 over websocket-client, one greenlet per socket, reconnects
    livekit.py   LiveKitClient: join tokens, Twirp RoomService, `/rtc` join / ping / leave
    sockets.py   close_websocket: close without websocket-client's wait (which swallows GreenletExit)

Importing `supabase`, `realtime` or `livekit` loads Locust and gevent, which monkey-patch the process: never import
them into a process that runs asyncio servers (the reference stack, the embedded Toxiproxy, pytest outside
`tests/gevent/`). `events` alone is safe anywhere.
"""
