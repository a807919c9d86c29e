"""Pure quota logic: the tenant and reservation values, validation, cap arithmetic, the tenants file
format and `QuotaService`, written against the `QuotaStore` port. No grpc, no redis here."""
