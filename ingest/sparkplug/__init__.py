"""Sparkplug B (specification 3.0) intake: Eclipse Sparkplug edge nodes into parkwatch readings.

::

    spBv1.0/{group}/{NBIRTH|NDATA|DBIRTH|DDATA|DDEATH|NDEATH}/{edge_node}[/{device}]
        │ protobuf (sparkplug_b.proto)
        ▼
    topics.py    parse and build spBv1.0 topics
    payload.py   decode, metric values by datatype, the rebirth NCMD payload
    session.py   births: names, aliases, datatypes; seq 0-255 unwrapped for the loss ledger; bdSeq
    mapping.py   metric → contract reading field (values, scale, offset, unit) or a ``generic`` value
    parts.py     mapped readings → the contract decoder → write-batch parts and dead letters
    host.py      the intake: births, data, deaths, statuses, dead letters
    rebirth.py   NCMD ``Node Control/Rebirth`` requests, rate-limited per node
    state.py     this host's ``spBv1.0/STATE/{host_id}`` birth and will
    generate.py  regenerates sparkplug_b_pb2.py from sparkplug_b.proto (grpcio-tools' protoc)

The mapped readings are validated by the contract decoder like any batch, so Sparkplug data
meets the same checks, dead letters and ack-after-write as the contract path.
"""
