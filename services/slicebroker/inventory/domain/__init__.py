"""The inventory's pure logic: the SKU catalogue, facility descriptions, claim validation and the
application service the servicer calls. No grpc, no redis here."""
