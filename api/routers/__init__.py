"""The API's routes, by what they serve."""
