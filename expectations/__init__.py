"""Great Expectations suites, declared in code, one per dataset; `json/` holds what they produce."""
