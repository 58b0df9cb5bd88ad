"""The radio environment: bands, propagation model, per-operator RSRP/RSRQ/SINR."""
