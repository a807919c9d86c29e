"""Accounting's pure logic: event and usage values, validation, device-second arithmetic, the
`AccountingService` the servicer calls and the `UsageStore` port it needs. No grpc, no Redis."""
