"""tradecert: trade certificates for Japanese chambers of commerce, over GraphQL."""
