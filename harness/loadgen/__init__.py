"""Load generation: the Locust plugin every locustfile imports, and the processes that run Locust.

    harness run (orchestrator)                      Locust master                    Locust workers (gevent)
    processes.LocustCluster ── HARNESS_* env ──►   plugin: worker_report ─► merge   plugin: request ─► record
      reads progress.json every ~2 s       ◄──     progress.json every 1 s    ◄──   report_to_master: payload
      reads result.json after exit         ◄──     quitting: result.json            CPU sample every 1 s

The orchestrator never imports Locust (gevent must not patch it); it talks to the master through files only.
"""
