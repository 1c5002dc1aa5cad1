"""The site model and its loader: the city as validated data."""
