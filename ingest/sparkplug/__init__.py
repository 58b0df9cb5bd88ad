"""Sparkplug B (specification 3.0) intake: Eclipse Sparkplug edge nodes into parkwatch readings.

::

    spBv1.0/{group}/{NBIRTH|NDATA|DBIRTH|DDATA|DDEATH|NDEATH}/{edge_node}[/{device}]
        │ protobuf (sparkplug_b.proto)
        ▼
    payload.py   decode, metric values by datatype, the rebirth NCMD
    session.py   births: names, aliases, datatypes; seq 0-255 unwrapped for the loss ledger; bdSeq
    mapping.py   metric → contract reading field (scale, offset, unit) or a ``generic`` value
    host.py      the ingester's side: topics, STATE, rebirth requests, statuses, dead letters

The mapped readings are validated by the contract decoder like any batch, so Sparkplug data
meets the same checks, dead letters and ack-after-write as the contract path.
"""
