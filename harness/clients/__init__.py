"""gevent protocol clients for Locust workers and gevent scripts (the locustfiles stay thin).

    events.py      Reporter: fires Locust `request` events (or a ListEvent / callbacks / nothing); RequestFailed
    http.py        Transport over FastHttpSession: one timed call, one event, a Reply; Supabase error decoding
    supabase/      the one place that knows Supabase's paths, headers, frames and the deployment's names:
      api.py       pure builders (paths, headers, queries, bodies, Realtime frames) by `model.target_config.Names`
      session.py   SupabaseSession: auth with refresh, PostgREST, Storage, Edge Functions over `http.Transport`
      realtime.py  RealtimeClient: Phoenix vsn 1.0.0 over websocket-client, one greenlet per socket, reconnects
      sync.py      SupabaseClient, RealtimeSocket: httpx and websocket-client for the orchestrator (no gevent)
    livekit.py     LiveKitClient: join tokens, Twirp RoomService, `/rtc` join / ping / leave
    pool.py        keep-alive reuse past fd 1023 (installed by http.py)
    sockets.py     close_websocket: close without websocket-client's wait (which swallows GreenletExit)

Importing `http`, `supabase.session`, `supabase.realtime` or `livekit` loads Locust and gevent, which
monkey-patch the process: never import them into a process that runs asyncio servers (the reference stack, the
embedded Toxiproxy, pytest outside `tests/gevent/`). `events` and `supabase.api` are safe anywhere; `supabase.sync`
(httpx) is for the orchestrator only, never a gevent-patched process.
"""
