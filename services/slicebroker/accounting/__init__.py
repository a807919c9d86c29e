"""The accounting service: what was used. It ingests the broker's grant lifecycle events exactly once
per event id, keeps running and closed device-second totals per institution, project and SKU, and
appends one ledger record per closed grant, from which billing exports are later produced."""
