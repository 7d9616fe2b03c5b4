"""The one place that knows Supabase's protocol (docs/protocols.md §1-§6) and the deployment's names.

    api.py      pure builders: paths, headers, PostgREST queries, bodies, Realtime (Phoenix) frames; by `Names`
    session.py  SupabaseSession: a user's gevent client (Locust workers, gevent scripts, tests/gevent/)
    realtime.py RealtimeClient: Realtime (Phoenix vsn 1.0.0) over websocket-client, a reader greenlet per socket,
                reconnects and rejoins; gevent, like session.py
    sync.py     SupabaseClient, RealtimeSocket: httpx and websocket-client, for the orchestrator (smoke, users,
                target check)

Nothing is imported here: `session` and `realtime` load Locust and gevent (which patch the process) and `sync`
loads httpx (whose httpcore imports trio, which fails in a gevent-patched process), so each process imports only
its side.
"""
